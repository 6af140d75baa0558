"""The chat room in a real Chromium against a real server (issue 23, points 4 and 10): the list
follows one's own messages and leaves a scrolled-up reader in peace, days and times, links that
are safe, editing one's own message, reports seen by the reporter, typing that ends with the
message, unread counts in the menu and the title, opt-in alerts, a link to one message far back,
and a list that stays small however long the room."""

from __future__ import annotations

import asyncio

import httpx

from protocol import Edit, Post, Subscribe
from realtime.policy import Area
from tests.browser.pages import log_in, message, open_page, open_room, send
from tests.client import Client
from tests.conftest import login

MAX_DOM = 300  # screens/room.js


async def _client(server, user) -> Client:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as http:
        token = await login(http, user.username)
    return await Client.connect(f"ws://127.0.0.1:{server.port}/ws", token)


async def _bearer(server, user) -> dict[str, str]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as http:
        return {"authorization": f"Bearer {await login(http, user.username)}"}


async def _history(pool, world, area: Area, texts: list[str], *, author_role="teacher_member") -> list[int]:
    """Messages written straight to the database (many at once), oldest first: their ids."""
    from storage.messages import NewPost, post_many

    author = world.users[author_role]
    async with pool.acquire() as conn, conn.transaction():
        done = await post_many(conn, [
            NewPost(world.space_id, world.rooms[area], author.id, author.display_name, author.school, text, None, area.value)
            for text in texts
        ])
    return [r.event.message.id for r in done]


async def _in_view(page, locator) -> bool:
    """The element is inside the scrolling list's visible box (and the window's)."""
    return await locator.evaluate(
        """el => { const box = el.closest('[data-testid=messages]').getBoundingClientRect();
                   const r = el.getBoundingClientRect();
                   return r.top >= box.top - 1 && r.bottom <= box.bottom + 1 && r.bottom <= window.innerHeight + 1; }"""
    )


async def _at_bottom(page) -> bool:
    return await page.eval_on_selector("[data-testid=messages]", "el => el.scrollHeight - el.scrollTop - el.clientHeight < 2")


async def _dom_messages(page) -> int:
    return await page.locator("[data-testid=messages] > li.message").count()


async def test_own_messages_stay_in_view_and_a_reader_scrolled_up_stays_put(browser, server, world, screenshot, axe):
    chat = world.channel(Area.CHAT)
    pupil = await open_page(browser, server.port, world.users["pupil_member"])
    reader = await open_page(browser, server.port, world.users["teacher_member"])
    await open_room(pupil, chat)
    await open_room(reader, chat)
    assert await pupil.text_content("#composer-hint") == "Enter to send, Shift+Enter for a new line"
    assert await pupil.get_attribute("#composer", "aria-describedby") == "composer-hint"
    for i in range(30):
        await send(pupil, f"line {i:02} of a long story")
    last = message(pupil, "line 29 of a long story")
    await last.wait_for()
    await pupil.wait_for_selector("[data-testid=messages] .message.pending", state="detached")
    await pupil.wait_for_timeout(200)
    assert await _in_view(pupil, last) and await _at_bottom(pupil)
    assert await pupil.locator("[data-testid=jump]").is_hidden()
    await screenshot(pupil, "pupil-chat-following")
    await axe(pupil, "a chat room after 30 lines")

    # The reader scrolls up to read; new lines do not pull them down: a button says they came.
    await message(reader, "line 29 of a long story").wait_for()
    await reader.eval_on_selector("[data-testid=messages]", "el => { el.scrollTop = 0; el.dispatchEvent(new Event('scroll')); }")
    await reader.wait_for_timeout(300)
    place = await reader.eval_on_selector("[data-testid=messages]", "el => el.scrollTop")
    await send(pupil, "a new line while you read")
    await message(reader, "a new line while you read").wait_for(state="attached")
    jump = reader.locator("[data-testid=jump]")
    await jump.wait_for()
    assert await jump.text_content() == "New messages ↓ (1)"
    assert await reader.eval_on_selector("[data-testid=messages]", "el => el.scrollTop") == place
    assert not await _in_view(reader, message(reader, "a new line while you read"))
    await screenshot(reader, "teacher-chat-new-messages-button")
    await axe(reader, "a chat room scrolled up with new messages waiting")
    await jump.click()
    await reader.wait_for_timeout(200)
    assert await _at_bottom(reader) and await jump.is_hidden()
    assert await _in_view(reader, message(reader, "a new line while you read"))
    # Their own message brings a reader who scrolled up back to the bottom.
    await reader.eval_on_selector("[data-testid=messages]", "el => { el.scrollTop = 0; el.dispatchEvent(new Event('scroll')); }")
    await send(reader, "my answer")
    await message(reader, "my answer").wait_for()
    await reader.wait_for_timeout(200)
    assert await _at_bottom(reader) and await _in_view(reader, message(reader, "my answer"))
    for page in (pupil, reader):
        await page.context.close()


async def test_days_times_and_links(browser, server, world, pool, screenshot, axe):
    chat = world.channel(Area.CHAT)
    await _history(pool, world, Area.CHAT, ["from the day before yesterday", "also that day"])
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE messages SET created_at = now() - interval '2 days' WHERE room_id = $1", world.rooms[Area.CHAT]
        )
    await _history(pool, world, Area.CHAT, [
        "our padlet: https://padlet.example/river_(2024)). Nice!",
        "javascript:alert(1) and <a href='javascript:alert(2)'>x</a> and data:text/html,hi",
    ])
    pupil = await open_page(browser, server.port, world.users["pupil_member"], answers=None)
    await open_room(pupil, chat)
    await message(pupil, "our padlet").wait_for()
    days = pupil.locator("[data-testid=messages] > li.day")
    assert await days.count() == 2
    keys = await days.evaluate_all("els => els.map(e => e.querySelector('time').getAttribute('datetime'))")
    expected = await pupil.evaluate(
        """() => [-2, 0].map(d => { const x = new Date(Date.now() + d * 86400000);
                  return `${x.getFullYear()}-${String(x.getMonth() + 1).padStart(2, '0')}-${String(x.getDate()).padStart(2, '0')}`; })"""
    )
    assert keys == expected
    # The separator of the older day comes before its messages, today's between the two days.
    order = await pupil.eval_on_selector_all(
        "[data-testid=messages] > li", "els => els.map(e => e.classList.contains('day') ? 'day' : e.querySelector('.text')?.textContent.slice(0, 8))"
    )
    assert order == ["day", "from the", "also tha", "day", "our padl", "javascri"]
    weekday = await pupil.evaluate("() => new Date(Date.now() - 2 * 86400000).toLocaleDateString('en-GB', {weekday: 'long'})")
    assert weekday in await days.first.text_content()
    # Each message has its time, the full date and time on hover.
    time = message(pupil, "our padlet").locator("time")
    assert await time.get_attribute("datetime") and ":" in await time.text_content() and await time.get_attribute("title")

    link = message(pupil, "our padlet").locator("a")
    assert await link.count() == 1
    assert await link.text_content() == "https://padlet.example/river_(2024)"
    assert await link.get_attribute("href") == "https://padlet.example/river_(2024)"
    assert await link.get_attribute("rel") == "noopener noreferrer nofollow"
    assert await link.get_attribute("target") == "_blank"
    assert await message(pupil, "our padlet").locator(".text").text_content() == "our padlet: https://padlet.example/river_(2024)). Nice!"
    hostile = message(pupil, "javascript:alert(1)")
    assert await hostile.locator("a").count() == 0
    assert await pupil.locator("[data-testid=messages] a[href^='javascript'], [data-testid=messages] a[href^='data']").count() == 0
    await hostile.locator(".text").click()
    await pupil.wait_for_timeout(200)
    assert pupil.dialogs == []  # type: ignore[attr-defined]  # nothing ran
    await screenshot(pupil, "pupil-chat-days-and-links")
    await axe(pupil, "a chat room with day separators and links")
    await pupil.context.close()


async def test_editing_own_message_reports_and_typing(browser, server, world, screenshot, axe):
    chat = world.channel(Area.CHAT)
    pupil = await open_page(browser, server.port, world.users["pupil_member"])
    classmate = await open_page(browser, server.port, world.users["pupil_admin"])
    for page in (pupil, classmate):
        await open_room(page, chat)
    await send(pupil, "We measured 12 degres")
    line = message(pupil, "We measured 12 degres")
    await line.locator("[data-action=edit]").wait_for()
    # Escape gives the message back as it was.
    await line.locator("[data-action=edit]").click()
    editor = pupil.locator("[data-testid=editor] textarea")
    assert await editor.evaluate("el => document.activeElement === el")
    await editor.fill("something else")
    await axe(pupil, "editing one's own message")
    await screenshot(pupil, "pupil-chat-editing")
    await editor.press("Escape")
    await pupil.locator("[data-testid=editor]").wait_for(state="detached")
    assert await line.locator(".text").text_content() == "We measured 12 degres"
    # Enter saves; the classmate sees the new words and "edited" at once.
    await line.locator("[data-action=edit]").click()
    await editor.fill("We measured 12 degrees")
    await editor.press("Enter")
    seen = message(classmate, "We measured 12 degrees")
    await seen.wait_for()
    assert await seen.locator("[data-testid=edited]").text_content() == "edited"
    await message(pupil, "We measured 12 degrees").locator("[data-testid=edited]").wait_for()
    assert await message(classmate, "12 degres").count() == 0

    # Only one's own message has Edit; the server refuses anyone else's edit anyway.
    assert await seen.locator("[data-action=edit]").count() == 0
    message_id = int(await seen.get_attribute("data-id"))
    other = await _client(server, world.users["pupil_admin"])
    refused = await other.error(Edit(chat, message_id, "not yours"))
    assert refused.code == "not_found"
    await other.close()

    # The classmate reports it: their page says so (the author's does not).
    await seen.locator("[data-action=report]").click()
    box = classmate.locator("dialog[open]")
    await box.locator("textarea").fill("just checking")
    await box.locator("[data-action=confirm]").click()
    await seen.locator("[data-testid=reported]").wait_for()
    assert await seen.locator("[data-action=report]").count() == 0
    await classmate.wait_for_timeout(300)
    assert await message(pupil, "We measured 12 degrees").locator("[data-testid=reported]").count() == 0
    await screenshot(classmate, "pupil-chat-reported")
    await axe(classmate, "a reported message")

    # "typing…" ends the moment the message arrives, not seconds later.
    await classmate.fill("#composer", "Bonj")
    await classmate.type("#composer", "o")  # an input event: typing…
    await pupil.wait_for_selector("[data-testid=typing]:has-text('typing')")
    await classmate.fill("#composer", "Bonjour !")
    await classmate.press("#composer", "Enter")
    await message(pupil, "Bonjour !").wait_for()
    assert await pupil.text_content("[data-testid=typing]") == ""
    for page in (pupil, classmate):
        await page.context.close()


async def test_unread_counts_in_the_menu_and_the_title(browser, server, world, screenshot, axe):
    chat, activities = world.channel(Area.CHAT), world.channel(Area.ACTIVITIES)
    pupil = await open_page(browser, server.port, world.users["pupil_member"])
    await open_room(pupil, chat)
    await pupil.wait_for_timeout(300)
    assert await pupil.title() == "chat — TwinHub"  # the screen's name, nothing waiting
    teacher = await _client(server, world.users["teacher_member"])
    await teacher.ok(Post(activities, "Homework: measure the river"))
    badge = pupil.locator(f'nav [data-channel="{activities}"] [data-testid=room-unread]')
    await badge.wait_for()
    assert await badge.text_content() == "1 new"
    await pupil.wait_for_function("() => /^\\(1\\) .*TwinHub$/.test(document.title)")
    for i in range(2):
        await teacher.ok(Post(activities, f"and more {i}"))
    await pupil.wait_for_function("() => /^\\(3\\) .*TwinHub$/.test(document.title)")
    assert await badge.text_content() == "3 new"
    assert await pupil.locator(f'nav [data-channel="{chat}"] [data-testid=room-unread]').count() == 0
    await screenshot(pupil, "pupil-chat-unread-in-menu")
    await axe(pupil, "the menu with unread counts")
    # A visitor, who reads the activities, has their counts too — and no message box, no Edit.
    visitor = await open_page(browser, server.port, world.users["visitor"])
    await visitor.wait_for_function("() => /^\\(3\\) .*TwinHub$/.test(document.title)")
    await open_room(visitor, activities)
    await message(visitor, "and more 1").wait_for()
    assert await visitor.locator("#composer").count() == 0 and await visitor.locator("[data-action=edit]").count() == 0
    assert not (await visitor.title()).startswith("(")  # nothing waiting any more
    await visitor.context.close()
    outsider = await _client(server, world.users["visitor"])
    assert (await outsider.error(Post(activities, "let me in"))).code == "forbidden"  # the server refuses anyway
    await outsider.close()

    # A reload keeps the counts: the server keeps where the pupil read.
    await pupil.reload()
    await pupil.wait_for_selector('[data-testid=status][data-state="online"]')
    await pupil.wait_for_function("() => /^\\(3\\) .*TwinHub$/.test(document.title)")
    await open_room(pupil, activities)
    await message(pupil, "and more 1").wait_for()
    await badge.wait_for(state="detached")
    assert not (await pupil.title()).startswith("(")
    headers = await _bearer(server, world.users["pupil_member"])
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as http:
        for _ in range(30):  # the page tells the server within a second
            rooms = (await http.get("/api/rooms/unread", headers=headers)).json()["rooms"]
            if next(r for r in rooms if r["channel"] == activities)["unread"] == 0:
                break
            await asyncio.sleep(0.2)
        else:
            raise AssertionError("the read position was not stored")
    # What the teacher writes in the open room is read at once: no count.
    await teacher.ok(Post(activities, "seen at once"))
    await message(pupil, "seen at once").wait_for()
    await pupil.wait_for_timeout(300)
    assert await badge.count() == 0 and not (await pupil.title()).startswith("(")
    await teacher.close()
    await pupil.context.close()


async def test_alerts_are_off_until_asked_for(browser, server, world, screenshot):
    chat = world.channel(Area.CHAT)
    context = await browser.new_context(viewport={"width": 1280, "height": 720}, locale="en-GB")
    # A stand-in for the browser's notifications and sound, counting what the page asks of them;
    # the page is taken to be in the background (it notifies only then).
    await context.add_init_script("""
        window.__notes = []; window.__tones = 0; window.__asked = 0;
        class FakeNotification {
          constructor(title, options) { window.__notes.push([title, options.body]); }
          static requestPermission() { window.__asked += 1; FakeNotification.permission = 'granted'; return Promise.resolve('granted'); }
        }
        FakeNotification.permission = 'default';
        window.Notification = FakeNotification;
        const Real = window.AudioContext;
        window.AudioContext = class extends Real {
          createOscillator() { window.__tones += 1; return super.createOscillator(); }
        };
        document.hasFocus = () => false;
    """)
    page = await context.new_page()
    await log_in(page, server.port, world.users["pupil_member"])
    await open_room(page, chat)
    notify, sound = page.locator("[data-testid=notify]"), page.locator("[data-testid=sound]")
    assert await notify.get_attribute("aria-pressed") == "false" and await sound.get_attribute("aria-pressed") == "false"
    teacher = await _client(server, world.users["teacher_member"])
    first = world.users["pupil_member"].display_name.split()[0]
    await teacher.ok(Post(chat, f"@{first} before you asked"))
    await message(page, "before you asked").wait_for()
    await page.wait_for_timeout(200)
    assert await page.evaluate("[window.__notes.length, window.__tones, window.__asked]") == [0, 0, 0]

    await notify.click()  # the browser asks, on this click only
    await page.wait_for_function("document.querySelector('[data-testid=notify]').getAttribute('aria-pressed') === 'true'")
    await sound.click()
    assert await sound.get_attribute("aria-pressed") == "true"
    tones = await page.evaluate("window.__tones")
    assert tones > 0  # a sample of the beep, on the click
    await teacher.ok(Post(chat, f"@{first} look at the photos"))
    await message(page, "look at the photos").wait_for()
    await page.wait_for_function("window.__notes.length === 1")
    assert await page.evaluate("window.__notes[0]") == ["TwinHub", f"{world.users['teacher_member'].display_name} wrote your name in chat"]
    assert await page.evaluate("window.__tones") > tones
    await teacher.ok(Post(chat, "nobody named here"))
    await message(page, "nobody named here").wait_for()
    headers = await _bearer(server, world.users["teacher_member"])
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as http:
        r = await http.post(f"/api/spaces/{world.space_id}/mail", headers=headers, json={
            "to": [world.users["pupil_member"].id], "subject": "Photos", "text": "Bring them", "client_id": "alert-1",
        })
        assert r.status_code == 201, r.text
    await page.wait_for_function("window.__notes.length === 2")
    assert await page.evaluate("window.__notes[1][1]") == f"New TwinMail from {world.users['teacher_member'].display_name}"
    await screenshot(page, "pupil-chat-alerts-on")
    assert await page.evaluate("window.__asked") == 1
    await teacher.close()
    await context.close()


async def test_a_link_opens_the_room_at_a_message_far_back(browser, server, world, pool, screenshot, axe):
    chat = world.channel(Area.CHAT)
    ids = await _history(pool, world, Area.CHAT, [f"message {i:04}" for i in range(1000)])
    teacher = await open_page(browser, server.port, world.users["teacher_admin"])
    await teacher.goto(f"http://127.0.0.1:{server.port}/#/room/{world.rooms[Area.CHAT]}/message/{ids[123]}")
    target = teacher.locator(f'[data-testid=messages] .message[data-id="{ids[123]}"]')
    await target.wait_for()
    await teacher.wait_for_timeout(300)
    assert "highlight" in await target.get_attribute("class")
    assert await _in_view(teacher, target)
    assert await target.evaluate("el => document.activeElement === el")  # keyboard users land on it
    assert await _dom_messages(teacher) <= MAX_DOM
    assert await message(teacher, "message 0999").count() == 0
    jump = teacher.locator("[data-testid=jump]")
    assert await jump.text_content() == "Latest messages ↓"
    await screenshot(teacher, "teacher-chat-link-to-a-message")
    await axe(teacher, "a room opened at one message")
    # New messages meanwhile do not move the reader; the button brings the newest.
    writer = await _client(server, world.users["pupil_member"])
    await writer.ok(Post(chat, "just now"))
    await teacher.wait_for_function("document.querySelector('[data-testid=jump]').textContent === 'New messages ↓ (1)'")
    assert await _in_view(teacher, target)
    await jump.click()
    await message(teacher, "just now").wait_for()
    await teacher.wait_for_timeout(200)
    assert await _at_bottom(teacher) and await _in_view(teacher, message(teacher, "just now"))
    assert await _dom_messages(teacher) <= MAX_DOM
    await writer.close()
    await teacher.context.close()


async def test_the_list_stays_small_while_scrolling_through_a_long_room(browser, server, world, pool):
    chat = world.channel(Area.CHAT)
    await _history(pool, world, Area.CHAT, [f"message {i:04}" for i in range(1000)])
    pupil = await open_page(browser, server.port, world.users["pupil_member"])
    await open_room(pupil, chat)
    await message(pupil, "message 0999").wait_for()
    most = 0
    for _ in range(60):
        await pupil.eval_on_selector("[data-testid=messages]", "el => { el.scrollTop = 0; el.dispatchEvent(new Event('scroll')); }")
        await pupil.wait_for_timeout(120)
        most = max(most, await _dom_messages(pupil))
        if await message(pupil, "message 0000").count():
            break
    await message(pupil, "message 0000").wait_for()
    assert most <= MAX_DOM
    assert await message(pupil, "message 0999").count() == 0  # the newest end was let go
    # Each message once, in order, with no hole in what is held.
    texts = await pupil.eval_on_selector_all("[data-testid=messages] .message .text", "els => els.map(e => e.textContent)")
    assert texts == [f"message {i:04}" for i in range(len(texts))]
    # And back down to the newest, the list loading the newer pages again.
    for _ in range(60):
        await pupil.eval_on_selector(
            "[data-testid=messages]", "el => { el.scrollTop = el.scrollHeight; el.dispatchEvent(new Event('scroll')); }"
        )
        await pupil.wait_for_timeout(120)
        most = max(most, await _dom_messages(pupil))
        if await message(pupil, "message 0999").count():
            break
    await message(pupil, "message 0999").wait_for()
    assert most <= MAX_DOM
    texts = await pupil.eval_on_selector_all("[data-testid=messages] .message .text", "els => els.map(e => e.textContent)")
    assert texts == [f"message {i:04}" for i in range(1000 - len(texts), 1000)]
    await pupil.context.close()


async def test_the_room_on_a_phone(browser, server, world, screenshot, axe):
    chat = world.channel(Area.CHAT)
    context = await browser.new_context(viewport={"width": 360, "height": 740}, locale="fr-FR", is_mobile=True, has_touch=True)
    page = await context.new_page()
    await log_in(page, server.port, world.users["pupil_member"])
    await open_room(page, chat)
    await send(page, "Regardez https://example.org/rivière — super !")
    more = message(page, "super").locator("[data-testid=more]")  # a touch screen: the actions behind "⋯"
    await more.wait_for()
    assert await page.text_content("#composer-hint") == "Entrée pour envoyer, Maj+Entrée pour aller à la ligne"
    assert await page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth") <= 0
    await more.tap()
    for control in ("[data-testid=more]", "[data-action=edit]", "[data-action=delete]"):
        box = await message(page, "super").locator(control).bounding_box()
        assert box and box["height"] >= 44, control
    await screenshot(page, "pupil-chat-phone-fr")
    await axe(page, "a chat room on a phone")
    await context.close()


async def test_a_name_in_here_now_opens_that_members_profile(browser, server, world, http, axe, screenshot):
    """Profiles are read where people meet: a name in a room's "Here now" opens it, as far as the
    server lets the viewer read it (a visitor never gets a pupil's)."""
    chat = world.channel(Area.CHAT)
    teacher = world.users["teacher_member"]
    auth = {"authorization": f"Bearer {await login(http, teacher.username)}"}
    r = await http.put("/api/profile", headers=auth, json={"about": "I teach geography in Lyon.", "languages": ["fr", "pl"], "interests": ["rivers"]})
    assert r.status_code == 200, r.text
    there = await _client(server, teacher)
    await there.ok(Subscribe(chat))
    pupil = await open_page(browser, server.port, world.users["pupil_member"])
    await open_room(pupil, chat)
    name = pupil.locator(f'[data-testid=presence] li[data-user="{teacher.id}"] [data-action=profile]')
    await name.click()
    box = pupil.locator("[data-testid=profile-dialog]")
    await box.wait_for()
    assert await box.locator("[data-testid=profile-about]").text_content() == "I teach geography in Lyon."
    assert "Polish" in await box.text_content()
    await axe(pupil, "a member's profile")
    await screenshot(pupil, "pupil-profile-dialog")
    await pupil.keyboard.press("Escape")
    await box.wait_for(state="detached")
    await there.close()
    await pupil.context.close()
