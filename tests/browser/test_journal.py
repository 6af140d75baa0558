"""The project journal, the activity feed and the public page in a real Chromium, against a real
server: a teacher writes an entry through the page, a pupil sees it live and comments, the
teacher sees the comment live; a bot's entry shows as a bot's; the feed words every record it
shows and links to it; the public page shows the journal to anyone without a login, live, and
never a pupil's name; and every kind of record the server can write has words."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from protocol import Edit, Hide, Post
from realtime.policy import Area
from storage.activity import EXTERNAL_SERVICES, KINDS
from tests.browser.pages import answer, open_page
from tests.client import Client
from tests.conftest import login

LOCALES = Path(__file__).resolve().parents[2] / "realtime" / "web" / "static" / "locales"


async def _auth(http, user) -> dict[str, str]:
    return {"authorization": f"Bearer {await login(http, user.username)}"}


async def _journal_id(http, user, space_id: int) -> int:
    me = (await http.get("/api/me", headers=await _auth(http, user))).json()
    [space] = [s for s in me["spaces"] if s["id"] == space_id]
    return next(r["id"] for r in space["rooms"] if r["kind"] == "journal")


async def _client(server, http, user) -> Client:
    return await Client.connect(f"ws://127.0.0.1:{server.port}/ws", await login(http, user.username))


async def _open_journal(page, journal_id: int) -> None:
    await page.click(f'nav [data-channel="room:{journal_id}"]')
    await page.wait_for_selector(f'[data-testid=journal-view][data-channel="room:{journal_id}"]')
    await page.wait_for_timeout(300)  # its history and subscription in


def _entry(page, title: str):
    return page.locator("[data-testid=journal] > li.entry", has=page.locator(".entry-title", has_text=title))


async def _fits_a_phone(page, screen: str, screenshot, name: str) -> None:
    await page.set_viewport_size({"width": 360, "height": 740})
    await page.wait_for_timeout(200)
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"{screen} overflows a phone's width: {width}px"
    small = await page.evaluate("""(sel) => [...document.querySelectorAll(sel)]
        .filter((el) => el.offsetParent !== null && el.getBoundingClientRect().height < 44)
        .map((el) => el.outerHTML.slice(0, 80))""",
        ".entry-form button, .comment-form button, .older:not([hidden]), .feed-line a, .entry-links a")
    assert small == [], f"{screen}: touch targets under 44 px: {small}"
    await screenshot(page, name)


# -- words for every record --------------------------------------------------------------------


def test_every_kind_of_record_the_server_writes_has_words_in_every_language():
    for tag in ("en", "fr"):
        catalogue = json.loads((LOCALES / f"{tag}.json").read_text("utf-8"))
        missing = [k for k in sorted(KINDS) if f"kind.{k}" not in catalogue]
        missing += [s for s in EXTERNAL_SERVICES if f"kind.{s}" not in catalogue]
        assert missing == [], f"{tag}.json has no sentence for {missing}"
        for key, text in catalogue.items():  # no sentence shows a raw event name
            assert not [k for k in KINDS if k in text], (key, text)


async def test_recording_a_kind_nobody_has_words_for_is_refused(world, pool):
    from storage import activity

    with pytest.raises(ValueError, match="not in activity.KINDS"):
        async with pool.acquire() as conn, conn.transaction():
            await activity.record(conn, [activity.NewActivity(world.space_id, "message.exploded", None, None)])


# -- the journal -------------------------------------------------------------------------------


async def test_a_teacher_writes_an_entry_a_pupil_comments_both_live(browser, server, world, http, screenshot, axe):
    teacher_user, pupil_user = world.users["teacher_admin"], world.users["pupil_member"]
    journal = await _journal_id(http, teacher_user, world.space_id)
    teacher = await open_page(browser, server.port, teacher_user)
    pupil = await open_page(browser, server.port, pupil_user)
    await _open_journal(teacher, journal)
    await _open_journal(pupil, journal)
    # Pupils comment, they do not write entries: no form on their page, and the server refuses.
    assert await pupil.locator("[data-testid=entry-form]").count() == 0
    other = await _client(server, http, pupil_user)
    refused = await other.error(Post(f"room:{journal}", "my own entry", title="Mine"))
    assert refused.code == "forbidden"

    await teacher.fill("#journal-title", "Week 5: the river")
    await teacher.fill("#journal-text", "We measured the Rhône. Photos: https://padlet.example/river. "
                                        "Not a link: javascript:alert(1)")
    # A redraw (here: another language; also a new welcome after a reconnect) keeps the draft.
    await teacher.select_option("[data-testid=lang]", "fr")
    await teacher.wait_for_selector("#entry-form-title:has-text('Écrire un nouvel article')")
    assert await teacher.input_value("#journal-title") == "Week 5: the river"
    await teacher.select_option("[data-testid=lang]", "en")
    await teacher.wait_for_selector("#entry-form-title:has-text('Write a new entry')")
    await teacher.fill("#journal-links", "https://twinspace.example/doc/17")
    await teacher.click("[data-testid=entry-publish]")
    entry = _entry(pupil, "Week 5: the river")
    await entry.wait_for()  # live, no reload
    assert await entry.locator(".author").first.text_content() == teacher_user.display_name
    assert await entry.locator(".meta .badge").first.text_content() == "teacher"
    link = entry.locator('.text a[href="https://padlet.example/river"]')
    assert await link.get_attribute("rel") == "noopener noreferrer nofollow"
    assert await entry.locator('.entry-links a[href="https://twinspace.example/doc/17"]').count() == 1
    assert await pupil.locator('[data-testid=journal] a[href^="javascript"]').count() == 0
    assert await _entry(teacher, "Week 5: the river").count() == 1  # the teacher's own, once

    await entry.locator(".comment-form textarea").fill("I took the photos!")
    await entry.locator(".comment-form button[type=submit]").click()
    comment = _entry(teacher, "Week 5: the river").locator(".comments .comment", has_text="I took the photos!")
    await comment.wait_for()  # live on the teacher's page
    assert await comment.locator(".author").text_content() == pupil_user.display_name
    assert await comment.locator(".badge").text_content() == "pupil"
    await _entry(pupil, "Week 5: the river").locator(".comments .comment", has_text="I took the photos!").wait_for()
    assert await _entry(teacher, "Week 5: the river").locator(".comments-title").text_content() == "Comments (1)"

    # Newest first: a second entry comes above the first.
    await teacher.fill("#journal-title", "Week 6")
    await teacher.fill("#journal-text", "Rain all week.")
    await teacher.click("[data-testid=entry-publish]")
    await _entry(pupil, "Week 6").wait_for()
    titles = await pupil.locator("[data-testid=journal] > li.entry .entry-title").all_text_contents()
    assert titles[:2] == ["Week 6", "Week 5: the river"]

    # A teacher admin moderates the journal: the pupil's comment hidden, on the pupil's page too.
    teacher_comment = _entry(teacher, "Week 5: the river").locator(".comments .comment", has_text="I took the photos!")
    await teacher_comment.locator("[data-action=hide]").click()
    await answer(teacher, "testing")
    await _entry(pupil, "Week 5: the river").locator(".comments .comment[data-state=hidden]").wait_for()
    assert await _entry(pupil, "Week 5: the river").locator(".comments", has_text="I took the photos!").count() == 0
    assert await pupil.locator("[data-action=hide]").count() == 0  # pupils do not moderate

    await screenshot(teacher, "teacher-journal")
    await screenshot(pupil, "pupil-journal")
    await axe(teacher, "a teacher's journal")
    await axe(pupil, "a pupil's journal")
    await _fits_a_phone(pupil, "the journal", screenshot, "pupil-journal-phone")
    await other.close()
    for page in (teacher, pupil):
        await page.context.close()


async def test_a_bots_entry_shows_as_a_bots_and_older_entries_page_in(browser, server, world, http, screenshot):
    admin = await _auth(http, world.users["teacher_admin"])
    bot = (await http.post(f"/api/spaces/{world.space_id}/bots", headers=admin, json={"name": "Weather bot"})).json()
    journal = await _journal_id(http, world.users["teacher_admin"], world.space_id)
    teacher = await _client(server, http, world.users["teacher_member"])
    entries = [await teacher.ok(Post(f"room:{journal}", f"entry text {i}", title=f"Old entry {i}")) for i in range(12)]
    for e in entries[:6]:  # comments push the oldest entries out of the first page of messages
        for j in range(8):
            await teacher.ok(Post(f"room:{journal}", f"comment {j}", parent=e.data["id"]))
    visitor = await open_page(browser, server.port, world.users["visitor"], lang="fr-FR")
    await _open_journal(visitor, journal)

    r = await http.post(f"/api/spaces/{world.space_id}/journal", headers={"authorization": f"Bearer {bot['token']}"},
                        json={"title": "Rhône at Lyon", "text": "Flow: 620 m3/s, 9 °C"})
    assert r.status_code == 201, r.text
    entry = _entry(visitor, "Rhône at Lyon")
    await entry.wait_for()
    assert await entry.get_attribute("data-bot") == "true"
    assert await entry.locator(".meta .badge").text_content() == "robot"  # in French
    assert "publié automatiquement par un robot" in await entry.locator(".meta").text_content()
    assert await entry.locator(".author").text_content() == "Weather bot"
    # A visitor may comment: the box is there.
    assert await entry.locator(".comment-form textarea").count() == 1
    await entry.scroll_into_view_if_needed()
    await screenshot(visitor, "visitor-journal-bot")

    # Older entries: the first page of 50 messages holds entries 6 to 11 and the comments.
    assert await _entry(visitor, "Old entry 0").count() == 0
    await visitor.click("[data-testid=journal-older]")
    await _entry(visitor, "Old entry 0").wait_for()
    assert await _entry(visitor, "Old entry 0").locator(".comments .comment").count() == 8
    await teacher.close()
    await visitor.context.close()


# -- the feed ----------------------------------------------------------------------------------


async def test_the_feed_says_each_record_in_words_and_links_to_it(browser, server, world, http, screenshot, axe):
    admin_user = world.users["teacher_admin"]
    admin = await _auth(http, admin_user)
    sid = world.space_id
    journal = await _journal_id(http, admin_user, sid)
    chat = world.channel(Area.CHAT)
    teacher = await _client(server, http, admin_user)
    pupil = await _client(server, http, world.users["pupil_member"])
    posted = await pupil.ok(Post(chat, "Hello from Kraków"))
    await pupil.ok(Edit(chat, posted.data["id"], "Hello from Kraków!"))
    rude = await pupil.ok(Post(chat, "something rude"))
    await teacher.ok(Hide(chat, rude.data["id"], "unkind"))
    entry = await teacher.ok(Post(f"room:{journal}", "Our river.", title="Week 5"))
    await pupil.ok(Post(f"room:{journal}", "Nice!", parent=entry.data["id"]))
    room = (await http.post(f"/api/spaces/{sid}/rooms", headers=admin, json={"area": "activities", "name": "Samples"})).json()
    assert (await http.patch(f"/api/spaces/{sid}/rooms/{room['id']}", headers=admin, json={"name": "River samples"})).status_code == 200
    for change in ("archive", "unarchive"):
        assert (await http.post(f"/api/spaces/{sid}/rooms/{room['id']}/{change}", headers=admin)).status_code == 200
    gone = (await http.post(f"/api/spaces/{sid}/rooms", headers=admin, json={"area": "activities", "name": "Old room"})).json()
    assert (await http.delete(f"/api/spaces/{sid}/rooms/{gone['id']}", headers=admin)).status_code == 200
    pupil_admin = world.users["pupil_admin"]
    assert (await http.patch(f"/api/spaces/{sid}/members/{pupil_admin.id}", headers=admin,
                             json={"role": "pupil_member"})).status_code == 200
    assert (await http.delete(f"/api/spaces/{sid}/members/{world.users['teacher_member'].id}", headers=admin)).status_code == 200
    for change in ("close", "reopen"):
        assert (await http.post(f"/api/spaces/{sid}/{change}", headers=admin)).status_code == 200
    service = (await http.post(f"/api/spaces/{sid}/bots", headers=admin,
                               json={"name": "TwinSpace pages", "scope": "activity"})).json()
    r = await http.post(f"/api/spaces/{sid}/activity", headers={"authorization": f"Bearer {service['token']}"},
                        json={"kind": "document.added", "area": "activities", "title": "River map.pdf",
                              "link": "https://twinspace.example/doc/17", "actor_id": admin_user.id})
    assert r.status_code == 201, r.text

    page = await open_page(browser, server.port, admin_user)
    await page.click("[data-testid=nav-feed]")
    await page.wait_for_selector("[data-testid=feed] li.feed-line")
    made = {"message.posted", "message.edited", "message.hidden", "journal.entry", "journal.comment", "room.created",
            "room.renamed", "room.archived", "room.unarchived", "room.deleted", "member.joined", "member.role_changed",
            "member.removed", "space.closed", "space.reopened", "document.added"}
    assert made - {"document.added"} == KINDS  # every kind TwinHub writes, each seen worded below
    shown = set(await page.locator("[data-testid=feed] li.feed-line").evaluate_all("els => els.map(e => e.dataset.kind)"))
    assert made <= shown, sorted(made - shown)
    text = await page.locator("[data-testid=feed-view]").inner_text()
    for kind in made:
        assert kind not in text  # words, never the event's name
    line = page.locator("[data-testid=feed] li.feed-line")
    assert "Pupil Member wrote a message in chat" in await line.filter(has_text="wrote a message").first.text_content()
    assert await line.filter(has_text="renamed the room Samples: it is now River samples").count() == 1
    assert await line.filter(has_text="Pupil Admin is now pupil (before: pupil administrator)").count() == 1
    external = line.filter(has_text="In the documents: River map.pdf").locator("a")
    assert await external.get_attribute("href") == "https://twinspace.example/doc/17"
    assert await external.get_attribute("rel") == "noopener noreferrer nofollow"
    assert await line.filter(has_text="deleted the room Old room").locator("a").count() == 0  # no room to open
    # Grouped by day, the day in words.
    assert await page.locator(".feed-day h2").count() >= 1
    await screenshot(page, "teacher-feed")
    await axe(page, "a teacher's feed")

    # Live: a new record arrives at the top.
    await pupil.ok(Post(chat, "one more"))
    await page.wait_for_function(
        "() => document.querySelectorAll('[data-testid=feed] li.feed-line[data-kind=\"message.posted\"]').length >= 2")
    # A message's line opens its room at the message; an entry's the journal at the entry.
    await line.filter(has_text="commented on a journal entry").locator("a").click()
    await page.wait_for_selector(f'[data-testid=journal-view][data-channel="room:{journal}"]')
    await page.wait_for_selector(".comment.target:has-text('Nice!')")
    await page.go_back()
    await page.wait_for_selector("[data-testid=feed] li.feed-line")
    await line.filter(has_text="changed a message in chat").locator("a").click()
    await page.wait_for_url(re.compile(rf"#/room/{world.rooms[Area.CHAT]}/message/{posted.data['id']}$"))
    await page.wait_for_selector(f'[data-testid=room][data-channel="{chat}"]')
    await page.go_back()
    await line.filter(has_text="archived the room River samples").locator("a").click()
    await page.wait_for_selector(f'[data-testid=room][data-channel="room:{room["id"]}"]')
    await teacher.close()
    await pupil.close()
    await page.context.close()


async def test_the_feed_pages_older_records_and_fits_a_phone(browser, server, world, http, screenshot):
    pupil_user = world.users["pupil_member"]
    pupil = await _client(server, http, pupil_user)
    for i in range(55):
        await pupil.ok(Post(world.channel(Area.CHAT), f"message {i}"))
    teacher = await _client(server, http, world.users["teacher_member"])
    await teacher.ok(Post(world.channel(Area.TEACHERS_ROOM), "teachers only"))
    page = await open_page(browser, server.port, pupil_user)
    await page.click("[data-testid=nav-feed]")
    await page.wait_for_selector("[data-testid=feed] li.feed-line")
    lines = page.locator("[data-testid=feed] li.feed-line")
    assert await lines.count() == 50
    await page.click("[data-testid=feed-older]")
    await page.wait_for_function("() => document.querySelectorAll('[data-testid=feed] li.feed-line').length > 50")
    # What a pupil may not read never reaches their feed (the server filters; the page shows it).
    assert await lines.filter(has_text="Teachers' room").count() == 0
    assert await lines.filter(has_text="teachers_room").count() == 0
    await _fits_a_phone(page, "the feed", screenshot, "pupil-feed-phone")
    await pupil.close()
    await teacher.close()
    await page.context.close()


# -- the public page ---------------------------------------------------------------------------


async def test_the_public_page_shows_the_journal_live_without_login_and_names_no_pupil(
        browser, server, world, http, screenshot, axe):
    admin = await _auth(http, world.users["teacher_admin"])
    r = await http.post(f"/api/spaces/{world.space_id}/public", headers=admin, json={"public": True})
    assert r.status_code == 200 and r.json()["public"] is True
    journal = f"room:{await _journal_id(http, world.users['teacher_admin'], world.space_id)}"
    teacher = await _client(server, http, world.users["teacher_admin"])
    pupil_user = world.users["pupil_member"]
    pupil = await _client(server, http, pupil_user)
    entry = await teacher.ok(Post(journal, "Our river in November. See https://padlet.example/river",
                                  title="Week 5", links=("https://padlet.example/photos",)))
    await pupil.ok(Post(journal, "I took the photos!", parent=entry.data["id"]))
    await pupil.ok(Post(world.channel(Area.PUPILS_CORNER), "corner talk, never public"))

    context = await browser.new_context(viewport={"width": 1280, "height": 720}, locale="fr-FR")  # nobody logged in
    page = await context.new_page()
    page.set_default_timeout(10_000)
    await page.goto(f"http://127.0.0.1:{server.port}/public/{world.slug}")
    await page.wait_for_selector("[data-testid=public-page]")
    assert await page.locator("h1").text_content() == f"Project {world.slug[2:]}"
    assert await page.locator("#username, #password, form.login").count() == 0  # no login form
    week5 = _entry_public(page, "Week 5")
    await week5.wait_for()
    assert await week5.locator(".author").first.text_content() == world.users["teacher_admin"].display_name
    comment = week5.locator(".comment")
    assert await comment.locator(".author").text_content() == f"un élève de {pupil_user.school}"  # French, no name
    assert await week5.locator('.text a[href="https://padlet.example/river"]').get_attribute("rel") == "noopener noreferrer nofollow"
    await page.wait_for_selector("[data-testid=public-status][data-state=live]")
    assert "En direct" in await page.locator("[data-testid=public-status]").text_content()

    await teacher.ok(Post(journal, "Rain all week.", title="Week 6"))  # live, through the event stream
    await _entry_public(page, "Week 6").wait_for()
    later = await pupil.ok(Post(journal, "We saw a heron", parent=entry.data["id"]))
    await week5.locator(".comment", has_text="We saw a heron").wait_for()
    await teacher.ok(Hide(journal, later.data["id"], "off topic"))
    await week5.locator(".comment", has_text="We saw a heron").wait_for(state="detached")

    text = await page.locator("body").inner_text()
    html = await page.content()
    for secret in (pupil_user.display_name, pupil_user.username, "corner talk"):
        assert secret not in text and secret not in html
    await screenshot(page, "visitor-public")
    await axe(page, "the public page")
    await _fits_a_phone(page, "the public page", screenshot, "visitor-public-phone")
    await page.set_viewport_size({"width": 1280, "height": 720})

    # Turned off: the open page says so (its stream ends and is refused), and so does a new one.
    r = await http.post(f"/api/spaces/{world.space_id}/public", headers=admin, json={"public": False})
    assert r.json()["public"] is False
    await page.wait_for_selector("[data-testid=public-missing][data-code=not_found]", timeout=20_000)
    assert "Il n'y a pas de projet public à cette adresse" in await page.locator("main").inner_text()
    assert await page.locator("text=Week 5").count() == 0
    await screenshot(page, "visitor-public-off")
    await axe(page, "the public page turned off")
    fresh = await context.new_page()
    await fresh.goto(f"http://127.0.0.1:{server.port}/public/no-such-project")
    await fresh.wait_for_selector("[data-testid=public-missing][data-code=not_found]")
    await teacher.close()
    await pupil.close()
    await context.close()


def _entry_public(page, title: str):
    return page.locator("[data-testid=public-journal] > li.entry", has=page.locator(".entry-title", has_text=title))


async def test_the_journal_says_it_is_public_while_the_public_view_is_on(browser, server, world, http, screenshot):
    """Where people write in the journal, they are told while it is public (anyone may read it,
    pupils unnamed) — live, when a teacher admin turns the view on or off."""
    journal = await _journal_id(http, world.users["pupil_member"], world.space_id)
    page = await open_page(browser, server.port, world.users["pupil_member"])
    await _open_journal(page, journal)
    notice = page.locator("[data-testid=journal-public]")
    assert await notice.count() == 0  # a new project's public view is off
    admin = await _auth(http, world.users["teacher_admin"])
    r = await http.post(f"/api/spaces/{world.space_id}/public", headers=admin, json={"public": True})
    assert r.status_code == 200, r.text
    await notice.wait_for()
    assert "public" in (await notice.text_content()).lower()
    await screenshot(page, "pupil-journal-public-notice")
    r = await http.post(f"/api/spaces/{world.space_id}/public", headers=admin, json={"public": False})
    assert r.status_code == 200, r.text
    await notice.wait_for(state="detached")
    await page.context.close()
