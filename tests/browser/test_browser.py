"""The browser client in a real Chromium, against a real server: a pupil and a teacher chatting
live, what each may see, moderation reaching the pupil's screen, a reconnect that loses and
doubles nothing, hostile text shown as text, the user's language, an ended session."""

from __future__ import annotations

import dataclasses

from protocol import Post, Subscribe
from realtime.policy import Area
from realtime.run.server import RunningServer
from tests.browser.pages import answer, message, open_page, open_room, send
from tests.client import Client
from tests.conftest import PASSWORD, login


async def test_a_pupil_and_a_teacher_chat_live(browser, server, world, screenshot, axe):
    chat, teachers = world.channel(Area.CHAT), world.channel(Area.TEACHERS_ROOM)
    pupil = await open_page(browser, server.port, world.users["pupil_member"])
    teacher = await open_page(browser, server.port, world.users["teacher_admin"])
    # The pupil has no teachers' room; the teacher does.
    assert await pupil.locator(f'nav [data-channel="{teachers}"]').count() == 0
    assert await teacher.locator(f'nav [data-channel="{teachers}"]').count() == 1
    await open_room(pupil, chat)
    await open_room(teacher, chat)
    teacher_here = f'[data-testid=presence] li[data-user="{world.users["teacher_admin"].id}"]'
    await pupil.wait_for_selector(teacher_here)  # presence changes come gathered, within a second
    assert await pupil.text_content(teacher_here) == world.users["teacher_admin"].display_name

    await teacher.fill("#composer", "Bonj")  # typing…
    await pupil.wait_for_selector("[data-testid=typing]:has-text('typing')")
    await send(teacher, "Bonjour la classe !")
    await message(pupil, "Bonjour la classe !").wait_for()
    await send(pupil, "Hello from Kraków")
    await message(teacher, "Hello from Kraków").wait_for()
    assert await message(pupil, "Hello from Kraków").count() == 1  # the optimistic one was replaced
    await screenshot(pupil, "pupil-chat")
    await axe(pupil, "a pupil's chat room")
    await axe(teacher, "a teacher's chat room")
    await teacher.context.close()
    await pupil.context.close()


async def test_hiding_reaches_the_pupils_screen_and_reports_fill_the_queue_live(browser, server, world, screenshot):
    corner = world.channel(Area.PUPILS_CORNER)
    author = await open_page(browser, server.port, world.users["pupil_member"])
    classmate = await open_page(browser, server.port, world.users["pupil_admin"])
    admin = await open_page(browser, server.port, world.users["teacher_admin"])
    await admin.click("[data-testid=nav-moderation]")
    await admin.wait_for_selector("[data-testid=reports]")
    for page in (author, classmate):
        await open_room(page, corner)
    await send(author, "nobody wants you in the team")
    await message(classmate, "nobody wants you in the team").wait_for()
    await message(classmate, "nobody wants you in the team").locator("[data-action=report]").click()
    await answer(classmate, "she is sad")
    await admin.wait_for_selector("[data-testid=reports] .report.open:has-text('nobody wants you in the team')")
    await screenshot(admin, "teacher-moderation-queue")

    await open_room(admin, corner)
    assert await admin.locator("#composer").count() == 0  # teacher admins read the corner, they do not post
    await message(admin, "nobody wants you in the team").locator("[data-action=hide]").click()
    await answer(admin, "unkind")
    for page in (author, classmate):
        await page.wait_for_selector("[data-testid=messages] .message[data-state=hidden]")
        assert await message(page, "nobody wants you in the team").count() == 0  # gone from the screen
    await screenshot(admin, "teacher-pupils-corner")
    # Mute the author from the same screen (the moderation screen's dialog: an hour, in the
    # corner): her screen says so at once, in the message box's place.
    await message(admin, "").filter(has=admin.locator("[data-action=mute]")).first.locator("[data-action=mute]").click()
    await answer(admin, "because")
    await admin.wait_for_selector("[data-testid=toasts] p:has-text('is muted until')")
    await author.wait_for_selector("[data-testid=composer-area] [data-state=muted]:has-text('You are muted here until')")
    assert await author.locator("#composer").count() == 0
    for page in (author, classmate, admin):
        await page.context.close()


async def test_hostile_text_is_shown_as_text(browser, server, world):
    chat = world.channel(Area.CHAT)
    attack = "<img src=x onerror=alert(1)><script>alert(2)</script>"
    pupil = await open_page(browser, server.port, world.users["pupil_member"])
    teacher = await open_page(browser, server.port, world.users["teacher_member"], answers=None)
    await open_room(pupil, chat)
    await open_room(teacher, chat)
    await send(pupil, attack)
    await message(teacher, "onerror=alert(1)").wait_for()
    text = await message(teacher, "onerror=alert(1)").locator(".text").text_content()
    assert text == attack
    assert await teacher.locator("[data-testid=messages] img, [data-testid=messages] script").count() == 0
    await teacher.wait_for_timeout(300)
    assert teacher.dialogs == []  # type: ignore[attr-defined]  # nothing ran
    for page in (pupil, teacher):
        await page.context.close()


async def test_reconnect_after_a_server_restart_loses_and_doubles_nothing(browser, server, world, http):
    chat = world.channel(Area.CHAT)
    own = RunningServer(dataclasses.replace(server.settings, port=0))
    await own.start()
    port = own.port
    pupil = await open_page(browser, port, world.users["pupil_member"])
    await open_room(pupil, chat)
    await own.stop()
    await pupil.wait_for_selector('[data-testid=status][data-state="offline"]')
    await send(pupil, "typed while offline")  # kept, and sent once the socket is back
    restarted = RunningServer(dataclasses.replace(server.settings, port=port))
    await restarted.start()
    try:
        token = await login(http, world.users["teacher_admin"].username)
        teacher = await Client.connect(f"ws://127.0.0.1:{port}/ws", token)
        # since=0: the room's every event, whether the pupil's page (retrying every 0.5-1 s)
        # got back in and re-sent its post before this subscribe or after it.
        await teacher.ok(Subscribe(chat, since=0))
        for i in range(3):
            await teacher.ok(Post(chat, f"sent meanwhile #{i}"))
        await pupil.wait_for_selector('[data-testid=status][data-state="online"]', timeout=20_000)
        for text in ("sent meanwhile #0", "sent meanwhile #1", "sent meanwhile #2", "typed while offline"):
            await message(pupil, text).wait_for()
        await pupil.wait_for_timeout(500)
        for text in ("sent meanwhile #0", "sent meanwhile #1", "sent meanwhile #2", "typed while offline"):
            assert await message(pupil, text).count() == 1, text
        stored = await teacher.wait_events(chat, 4)
        assert [e.data["message"]["text"] for e in stored].count("typed while offline") == 1
        await teacher.close()
    finally:
        await pupil.context.close()
        await restarted.stop()


async def test_errors_are_shown_in_the_users_language(browser, server, world, http):
    chat = world.channel(Area.CHAT)
    pupil = await open_page(browser, server.port, world.users["pupil_admin"], lang="fr-FR")
    assert "Salons" in await pupil.text_content("nav")  # French from the browser's language
    await open_room(pupil, chat)
    await pupil.fill("#composer", "encore moi")
    admin = {"authorization": f"Bearer {await login(http, world.users['teacher_admin'].username)}"}
    r = await http.post(f"/api/spaces/{world.space_id}/mutes", headers=admin,
                        json={"user_id": world.users["pupil_admin"].id, "scope": "chat", "minutes": 30})
    assert r.status_code == 201
    muted = "[data-testid=composer-area] [data-state=muted]"
    await pupil.wait_for_selector(f"{muted}:has-text('Tu es muet ici jusqu')")
    assert "Ce que tu avais commencé à écrire est gardé" in await pupil.text_content(muted)  # the words are kept
    await pupil.select_option("[data-testid=lang]", "en")  # English's words fetched first: waited for
    await pupil.locator("nav", has_text="Rooms").wait_for()
    await pupil.wait_for_selector(f"{muted}:has-text('You are muted here until')")
    await pupil.context.close()


async def test_an_ended_session_goes_back_to_the_login_page(browser, server, world, http, screenshot):
    pupil = await open_page(browser, server.port, world.users["visitor"])
    token = await login(http, world.users["visitor"].username)
    r = await http.post("/api/logout/everywhere", headers={"authorization": f"Bearer {token}"})
    assert r.status_code == 200
    await pupil.wait_for_selector("form.login")
    assert "session has ended" in await pupil.text_content("#login-error")
    await screenshot(pupil, "login")
    await pupil.context.close()


async def test_the_page_sets_a_strict_content_security_policy(http):
    r = await http.get("/")
    assert r.status_code == 200 and "<script type=\"module\" src=\"/static/app.js\">" in r.text
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    js = await http.get("/static/app.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    assert "innerHTML" not in js.text and "innerHTML" not in (await http.get("/static/dom.js")).text
    assert (await http.get("/static/../app.py")).status_code == 404


async def test_history_loads_when_scrolling_up(browser, server, world, pool):
    from storage.messages import NewPost, post_many

    chat = world.channel(Area.CHAT)
    author = world.users["teacher_member"]
    async with pool.acquire() as conn, conn.transaction():
        await post_many(conn, [
            NewPost(world.space_id, world.rooms[Area.CHAT], author.id, author.display_name, author.school,
                    f"old message {i:03}", None, "chat")
            for i in range(120)
        ])
    pupil = await open_page(browser, server.port, world.users["pupil_member"])
    await open_room(pupil, chat)
    await message(pupil, "old message 119").wait_for()
    assert await message(pupil, "old message 000").count() == 0  # the newest 50 first
    for _ in range(5):
        await pupil.eval_on_selector("[data-testid=messages]", "el => { el.scrollTop = 0; el.dispatchEvent(new Event('scroll')); }")
        await pupil.wait_for_timeout(300)
    await message(pupil, "old message 000").wait_for()
    assert await pupil.locator("[data-testid=messages] .message").count() == 120
    await pupil.context.close()


async def test_mail_between_a_pupil_and_a_teacher(browser, server, world):
    pupil = await open_page(browser, server.port, world.users["pupil_member"])
    teacher = await open_page(browser, server.port, world.users["teacher_admin"])
    await pupil.click("[data-testid=nav-mail]")
    await pupil.click("text=New mail")
    await pupil.check(f'.recipient:has-text("{world.users["teacher_admin"].display_name}") input')
    await pupil.fill("#mail-subject", "Our water project")
    await pupil.fill("#mail-text", "Here is our survey, Madame.")
    await pupil.click("text=Send mail")
    await pupil.wait_for_selector("[data-testid=toasts] p:has-text('Mail sent')")
    await teacher.wait_for_selector("[data-testid=unread]")  # the unread count arrives live
    await teacher.click("[data-testid=nav-mail]")
    await teacher.click("[data-testid=threads] button:has-text('Our water project')")
    await teacher.wait_for_selector(".mail .text:has-text('Here is our survey, Madame.')")
    for page in (pupil, teacher):
        await page.context.close()


async def test_usable_on_a_phone_sized_screen(browser, server, world, screenshot, axe):
    context = await browser.new_context(viewport={"width": 360, "height": 740}, locale="fr-FR", is_mobile=True)
    page = await context.new_page()
    await page.goto(f"http://127.0.0.1:{server.port}/")
    await page.fill("#username", world.users["pupil_admin"].username)
    await page.fill("#password", PASSWORD)
    await page.press("#password", "Enter")  # the keyboard alone logs in
    await page.wait_for_selector('[data-testid=status][data-state="online"]')
    await open_room(page, world.channel(Area.CHAT))
    overflow = await page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth")
    assert overflow <= 0  # nothing wider than the screen
    unlabelled = await page.evaluate(
        "[...document.querySelectorAll('input, textarea')].filter(e => !e.labels?.length && !e.getAttribute('aria-label')).length"
    )
    assert unlabelled == 0
    # One scroll area: the page itself does not scroll, the message list does; the message box
    # is on screen without scrolling.
    for i in range(40):
        await send(page, f"ligne {i}")
    await message(page, "ligne 39").wait_for()
    assert await page.evaluate("document.scrollingElement.scrollHeight - window.innerHeight") <= 0
    assert await page.evaluate("(() => { const l = document.querySelector('[data-testid=messages]'); return l.scrollHeight > l.clientHeight; })()")
    box = await page.locator("#composer").bounding_box()
    assert box is not None and box["y"] + box["height"] <= 740
    assert await page.locator("nav").is_hidden()  # the menu folds away
    await axe(page, "a room on a phone")
    await screenshot(page, "phone-chat-fr")
    await page.click("[data-testid=menu-toggle]")
    assert await page.locator("nav").is_visible() and await page.locator("main").is_hidden()
    await axe(page, "the menu on a phone")
    await screenshot(page, "phone-menu-fr")
    await page.click("nav [data-testid=nav-home]")
    await page.wait_for_selector("[data-testid=home]")
    assert await page.locator("nav").is_hidden()  # choosing a screen folds the menu again
    await context.close()


async def test_a_visitor_reads_the_pupils_work_as_a_pupil_of_their_school(browser, server, world, screenshot):
    """Issue 21 (rules 4, 10): authors carry their badge; a visitor sees a pupil's message signed
    "a pupil of <school>" — never the pupil's name, and never their own name in its place."""
    room = world.channel(Area.ACTIVITIES)
    pupil_token = await login_token(server, world.users["pupil_member"])
    writer = await Client.connect(f"ws://127.0.0.1:{server.port}/ws", pupil_token)
    await writer.ok(Post(room, "We counted 41 swans"))
    await writer.close()
    visitor = await open_page(browser, server.port, world.users["visitor"])
    await open_room(visitor, room)
    line = message(visitor, "We counted 41 swans")
    await line.wait_for()
    assert await line.locator(".author").text_content() == f"a pupil of {world.users['pupil_member'].school}"
    assert await line.locator(".badge").text_content() == "pupil"
    text = await visitor.locator("[data-testid=messages]").text_content()
    assert world.users["pupil_member"].display_name not in text
    assert world.users["visitor"].display_name not in text
    await screenshot(visitor, "visitor-reads-pupils-work")
    await visitor.context.close()
    teacher = await open_page(browser, server.port, world.users["teacher_member"])
    await open_room(teacher, room)
    line = message(teacher, "We counted 41 swans")
    await line.wait_for()
    assert await line.locator(".author").text_content() == world.users["pupil_member"].display_name
    assert await line.locator(".badge").text_content() == "pupil"
    await teacher.context.close()


async def login_token(server, user) -> str:
    import httpx

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as http:
        return await login(http, user.username)
