"""The project settings screen (screens/project.js), a teacher admin's console, in a real Chromium
against a real server: rooms made, renamed, archived and deleted reaching another member's page
live; the project closed and reopened under a pupil's eyes; a bot's token shown once, working, then
revoked; the audit log read, filtered, paged and downloaded, its filters one row on a wide screen
and folded on a phone, a join by invitation said once; the public view off until turned on;
nobody else has the screen, and the server refuses them; a phone-sized check. And what goes with
it: "New room" for whoever may make one (a pupil admin) and nothing more; the feed's words for a
room nobody made; Start's rooms by what one may do there (write, comment, read), and an
invitation's two answers told apart."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

from realtime.policy import Area
from tests.browser.pages import bearer, open_menu, open_page, open_room


def _rows(page, testid: str):
    return page.locator(f"[data-testid={testid}] tbody tr")


async def _open_section(page, space_id: int, section: str) -> None:
    await page.click("[data-testid=nav-project]")
    await page.wait_for_selector("[data-testid=project]")
    await page.click(f'.project-tabs a[data-section="{section}"]')
    await page.wait_for_selector(f'[data-testid=project][data-section="{section}"]')


async def _confirm(page, *, expect: str | None = None) -> str:
    """Confirms the open confirm dialog; answers its text (checked to hold `expect`)."""
    box = page.locator("dialog[open][data-testid=confirm]")
    await box.wait_for()
    text = await box.inner_text()
    if expect is not None:
        assert expect in text, text
    await box.locator("[data-action=confirm]").click()
    await box.wait_for(state="detached")
    return text


async def test_rooms_made_renamed_archived_and_deleted_reach_another_members_page_live(
    browser, server, world, screenshot, axe,
):
    sid = world.space_id
    admin = await open_page(browser, server.port, world.users["teacher_admin"])
    teacher = await open_page(browser, server.port, world.users["teacher_member"])
    await _open_section(admin, sid, "rooms")
    # Every room of the project, with its area and state; the journal is only renamed.
    assert await _rows(admin, "rooms").count() == len(world.rooms) + 1
    journal = _rows(admin, "rooms").filter(has_text="Project journal")
    assert await journal.locator("[data-action]").all_inner_texts() == ["Rename"]
    chat = admin.locator(f'[data-testid=rooms] tr[data-room="{world.rooms[Area.CHAT]}"]')
    assert await chat.locator("[data-action=delete]").count() == 0  # came with the project: archived, never deleted
    # A teacher admin makes rooms in the activities only (the areas offered are theirs).
    assert await admin.locator("#project-room-area option").all_inner_texts() == ["Activities"]
    await axe(admin, "project settings: rooms")
    await screenshot(admin, "teacher_admin-project-rooms")

    await admin.fill("#project-room-name", "River samples")
    await admin.press("#project-room-name", "Enter")
    link = teacher.locator("nav a.link", has_text="River samples")
    await link.wait_for()  # the partner's menu, live: a fresh welcome
    row = _rows(admin, "rooms").filter(has_text="River samples")
    await row.wait_for()
    await link.click()
    await teacher.wait_for_selector("#composer")

    await row.locator("[data-action=rename]").click()
    box = admin.locator("dialog[open][data-testid=rename-dialog]")
    await box.locator("input").fill("River data")
    await box.locator("[data-action=confirm]").click()
    await teacher.locator("nav a.link", has_text="River data").wait_for()
    row = _rows(admin, "rooms").filter(has_text="River data")

    await row.locator("[data-action=archive]").click()
    text = await _confirm(admin, expect="nobody can write in it")
    assert "unarchive" in text
    await teacher.wait_for_selector(".room .readonly")  # the composer is gone, live
    assert await teacher.locator("#composer").count() == 0
    await teacher.locator("nav a.link", has_text="River data").locator(".badge").wait_for()
    await admin.wait_for_selector('[data-testid=rooms] tr[data-state="archived"]:has-text("River data")')
    await row.locator("[data-action=unarchive]").click()
    await _confirm(admin)
    await teacher.wait_for_selector("#composer")

    await row.locator("[data-action=delete]").click()
    box = admin.locator("dialog[open][data-testid=confirm]")
    await axe(admin, "project settings: the delete dialog")
    await screenshot(admin, "teacher_admin-project-delete-room")
    text = await _confirm(admin, expect="cannot be undone")
    assert "every member" in text and "archive it instead" in text
    await link.wait_for(state="detached")
    await teacher.locator("nav a.link", has_text="River data").wait_for(state="detached")
    await row.wait_for(state="detached")
    for page in (admin, teacher):
        await page.context.close()


async def test_closing_the_project_makes_a_pupils_page_read_only_live_and_reopening_undoes_it(
    browser, server, world, screenshot, axe,
):
    sid = world.space_id
    admin = await open_page(browser, server.port, world.users["teacher_admin"])
    pupil = await open_page(browser, server.port, world.users["pupil_member"])
    await open_room(pupil, world.channel(Area.CHAT))
    await pupil.wait_for_selector("#composer")
    await _open_section(admin, sid, "project")
    state = admin.locator("[data-testid=project-state]")
    assert await state.get_attribute("data-state") == "open"
    await axe(admin, "project settings: closing and public view")
    await screenshot(admin, "teacher_admin-project-state")

    await admin.click("[data-action=close]")
    box = admin.locator("dialog[open][data-testid=confirm]")
    await box.wait_for()
    await axe(admin, "project settings: the close dialog")
    await screenshot(admin, "teacher_admin-project-close-dialog")
    text = await _confirm(admin, expect="read-only for everyone")
    assert "can still read everything" in text and "bots post nothing" in text and "reopen" in text
    await pupil.wait_for_selector(".room .readonly")  # live: the pupil's composer is gone
    assert await pupil.locator("#composer").count() == 0
    await pupil.locator("nav h2 .badge", has_text="closed").wait_for()
    await admin.wait_for_selector('[data-testid=project-state][data-state="closed"]')
    # No room is made while it is closed: "New room" leaves the menu; its address says why.
    await admin.locator("[data-testid=nav-new-room]").wait_for(state="detached")
    await admin.goto(f"http://127.0.0.1:{server.port}/#/new-room/{sid}")
    await admin.wait_for_selector("[data-testid=new-room] .notice:has-text('closed')")
    assert await admin.locator("[data-testid=room-create] button[type=submit]").is_disabled()
    # The rooms cannot change while the project is closed: said, and the buttons are off.
    await _open_section(admin, sid, "rooms")
    await admin.wait_for_selector(".project-view .notice:has-text('closed')")
    assert await admin.locator("[data-testid=rooms] [data-action=rename]").first.is_disabled()

    await admin.click('.project-tabs a[data-section="project"]')
    await admin.click("[data-action=reopen]")
    await _confirm(admin, expect="post")
    await pupil.wait_for_selector("#composer")
    await admin.wait_for_selector('[data-testid=project-state][data-state="open"]')
    await admin.locator("[data-testid=nav-new-room]").wait_for()  # a teacher admin's shortcut, back
    for page in (admin, pupil):
        await page.context.close()


async def test_a_bots_token_is_shown_once_works_and_stops_when_revoked(browser, server, world, http, screenshot, axe):
    sid = world.space_id
    admin = await open_page(browser, server.port, world.users["teacher_admin"])
    await admin.context.grant_permissions(["clipboard-read", "clipboard-write"])
    await _open_section(admin, sid, "bots")
    await admin.wait_for_selector(".project-bots p:has-text('no bot')")
    await axe(admin, "project settings: bots")
    await admin.fill("#project-bot-name", "Weather station")
    await admin.check("input[name=scope][value=journal]")
    await admin.click("[data-testid=bot-create] button[type=submit]")
    box = admin.locator("dialog[open][data-testid=token-dialog]")
    await box.wait_for()
    token = await box.locator("[data-testid=bot-token]").input_value()
    assert token.startswith("twb_")
    assert "shown only this once" in await box.inner_text()
    await axe(admin, "project settings: the token dialog")
    await screenshot(admin, "teacher_admin-project-bot-token")
    await box.locator("[data-action=done]").click()  # not copied: warned first
    await box.locator("[role=alert]", has_text="will not be shown again").wait_for()
    await box.locator("[data-action=copy]").click()
    await box.locator("[data-action=copy]", has_text="Copied").wait_for()
    assert await admin.evaluate("navigator.clipboard.readText()") == token
    await box.locator("[data-action=done]").click()
    await admin.locator("[data-testid=token-dialog]").wait_for(state="detached")
    assert token not in await admin.content()  # gone from the page
    row = _rows(admin, "bots").filter(has_text="Weather station")
    await row.wait_for()
    assert await row.get_attribute("data-state") == "active"
    await screenshot(admin, "teacher_admin-project-bots")

    # The token works: a program posts a journal entry with it.
    bot = {"authorization": f"Bearer {token}", "idempotency-key": "reading-1"}
    r = await http.post(f"/api/spaces/{sid}/journal", headers=bot, json={"title": "Rhône", "text": "9 °C"})
    assert r.status_code == 201, r.text

    await row.locator("[data-action=revoke]").click()
    await _confirm(admin, expect="stops working at once")
    await admin.wait_for_selector('[data-testid=bots] tr[data-state="revoked"]:has-text("Weather station")')
    r = await http.post(f"/api/spaces/{sid}/journal", headers={**bot, "idempotency-key": "reading-2"},
                        json={"title": "Rhône", "text": "10 °C"})
    assert r.status_code == 401
    await admin.context.close()


async def test_the_audit_log_read_filtered_paged_and_downloaded(browser, server, world, http, screenshot, axe):
    sid = world.space_id
    headers = await bearer(http, world.users["teacher_admin"])
    pupil = world.users["pupil_member"]
    r = await http.post(f"/api/spaces/{sid}/mutes", headers=headers,
                        json={"user_id": pupil.id, "scope": "chat", "minutes": 5, "reason": "calm down"})
    assert r.status_code == 201
    room = (await http.post(f"/api/spaces/{sid}/rooms", headers=headers,
                            json={"area": "activities", "name": "Group A"})).json()["id"]
    assert (await http.post(f"/api/spaces/{sid}/rooms/{room}/archive", headers=headers)).status_code == 200
    for i in range(50):  # enough for a second page
        assert (await http.post(f"/api/spaces/{sid}/public", headers=headers, json={"public": i % 2 == 1})).status_code == 200

    admin = await open_page(browser, server.port, world.users["teacher_admin"])
    await _open_section(admin, sid, "audit")
    rows = _rows(admin, "audit")
    await admin.wait_for_selector("[data-testid=audit-count]:has-text('older ones follow')")
    assert await rows.count() == 50
    assert "turned the public view on" in await rows.first.inner_text()
    assert "space.public_on" not in await rows.first.inner_text()  # words, never the action's name
    await axe(admin, "project settings: the audit log")
    await screenshot(admin, "teacher_admin-project-audit")
    await admin.click("[data-action=older]")
    await admin.locator("[data-testid=audit] tr[data-action='member.mute']").wait_for()
    mute = await admin.locator("[data-testid=audit] tr[data-action='member.mute']").inner_text()
    assert "muted Pupil Member in Chat until" in mute and "calm down" in mute
    assert "archived the room “Group A”" in await admin.locator("tr[data-action='room.archive']").inner_text()

    # Filtered by the server: one kind of act.
    await admin.select_option("#audit-action", "room.archive")
    await admin.click("[data-action=filter]")
    await admin.wait_for_selector("[data-testid=audit-count]:has-text('Entries: 1.')")
    assert await rows.count() == 1
    async with admin.expect_download() as download:
        await admin.click("[data-testid=audit-csv]")
    path = await (await download.value).path()
    table = list(csv.reader(io.StringIO(open(path, encoding="utf-8-sig").read())))
    assert table[0][:5] == ["id", "at", "actor_id", "actor", "action"]
    assert [r[4] for r in table[1:]] == ["room.archive"] and "Group A" in table[1][8]

    # By member, and by date: today holds them all, tomorrow nothing.
    await admin.click("[data-action=clear]")
    await admin.select_option("#audit-actor", str(world.users["teacher_admin"].id))
    await admin.fill("#audit-from", date.today().isoformat())
    await admin.fill("#audit-to", date.today().isoformat())
    await admin.click("[data-action=filter]")
    await admin.wait_for_selector("[data-testid=audit-count]:has-text('older ones follow')")
    csv_link = admin.locator(f"[data-testid=audit-csv][href*='actor={world.users['teacher_admin'].id}']")
    await csv_link.wait_for(state="attached")  # the filtered page is the one shown
    assert "since=" in await csv_link.get_attribute("href")
    assert set(await rows.locator("td:nth-child(2)").all_inner_texts()) == {"Teacher Admin"}
    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    await admin.fill("#audit-from", tomorrow)
    await admin.fill("#audit-to", tomorrow)
    await admin.click("[data-action=filter]")
    await admin.wait_for_selector("[data-testid=audit-count]:has-text('No entry matches')")
    assert await rows.count() == 0
    await admin.context.close()


async def test_the_public_view_is_off_until_turned_on_and_shows_its_address(browser, server, world, http, screenshot):
    sid, slug = world.space_id, world.slug
    assert (await http.get(f"/api/public/{slug}")).status_code == 404  # a new project's is off
    admin = await open_page(browser, server.port, world.users["teacher_admin"])
    await _open_section(admin, sid, "project")
    await admin.wait_for_selector('[data-testid=public-state][data-state="off"]')
    assert "off until a teacher admin turns it on" in await admin.locator(".project-view").inner_text()
    link = admin.locator("[data-testid=public-link]")
    assert await link.count() == 0
    await admin.click("[data-action=public-on]")
    await _confirm(admin, expect="never by name")
    await link.wait_for()
    assert await link.get_attribute("href") == f"http://127.0.0.1:{server.port}/public/{slug}"
    assert (await http.get(f"/api/public/{slug}")).status_code == 200
    await screenshot(admin, "teacher_admin-project-public")
    await admin.click("[data-action=public-off]")
    await _confirm(admin, expect="stops working")
    await admin.wait_for_selector('[data-testid=public-state][data-state="off"]')
    assert await link.count() == 0
    assert (await http.get(f"/api/public/{slug}")).status_code == 404
    await admin.context.close()


async def test_nobody_else_has_the_screen_and_the_server_refuses_them(browser, server, world, http):
    sid = world.space_id
    for who in ("teacher_member", "pupil_member", "visitor"):
        page = await open_page(browser, server.port, world.users[who])
        assert await page.locator("[data-testid=nav-project]").count() == 0
        assert await page.locator("[data-testid=nav-new-room]").count() == 0  # no create_room anywhere
        await page.goto(f"http://127.0.0.1:{server.port}/#/project/{sid}/bots")
        await page.wait_for_selector('[data-testid=status][data-state="online"]')
        await page.wait_for_selector("[data-testid=home]")  # sent to Start instead
        assert await page.locator("[data-testid=project]").count() == 0
        await page.goto(f"http://127.0.0.1:{server.port}/#/new-room/{sid}")
        await page.wait_for_selector("[data-testid=home]")
        assert await page.locator("[data-testid=new-room]").count() == 0
        await page.context.close()
        r = await http.post(f"/api/spaces/{sid}/rooms", headers=await bearer(http, world.users[who]),
                            json={"area": "activities", "name": "Sneaky"})
        assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden"), who
    # The server refuses them anyway: one route each.
    r = await http.post(f"/api/spaces/{sid}/close", headers=await bearer(http, world.users["teacher_member"]))
    assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden")
    r = await http.get(f"/api/spaces/{sid}/bots", headers=await bearer(http, world.users["pupil_member"]))
    assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden")
    r = await http.get(f"/api/spaces/{sid}/audit", headers=await bearer(http, world.users["visitor"]))
    assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden")


async def test_the_screen_on_a_phone(browser, server, world, http, screenshot, axe):
    sid = world.space_id
    headers = await bearer(http, world.users["teacher_admin"])
    await http.post(f"/api/spaces/{sid}/bots", headers=headers, json={"name": "A bot with a rather long name"})
    admin = await open_page(browser, server.port, world.users["teacher_admin"], lang="fr-FR")  # French's longer words
    await admin.set_viewport_size({"width": 360, "height": 740})
    for section in ("rooms", "project", "bots", "audit"):
        await admin.goto(f"http://127.0.0.1:{server.port}/#/project/{sid}/{section}")
        await admin.wait_for_selector(f'[data-testid=project][data-section="{section}"]')
        await admin.wait_for_timeout(300)  # its lists loaded
        assert await admin.locator(".project-tabs").is_visible()  # the sections, on a phone too
        overflow = await admin.evaluate("document.scrollingElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{section}: {overflow}px wider than the phone"
        small = await admin.evaluate("""() => [...document.querySelectorAll('.project-view button, .project-view a.button-link')]
            .filter((b) => b.offsetParent && b.getBoundingClientRect().height < 44).map((b) => b.textContent)""")
        assert small == [], f"{section}: touch targets under 44 px: {small}"
        await axe(admin, f"project settings on a phone: {section}")
        await screenshot(admin, f"teacher_admin-project-{section}-phone")
        if await admin.locator(".project-table").count():
            await admin.locator(".project-table").first.scroll_into_view_if_needed()
            await screenshot(admin, f"teacher_admin-project-{section}-phone-table")
    await admin.context.close()


# -- New room: whoever may make a room, and only that ---------------------------------------------


async def test_a_pupil_admin_makes_a_room_from_the_menu_and_nothing_more(browser, server, world, http, screenshot, axe):
    sid = world.space_id
    pupil_admin = world.users["pupil_admin"]
    page = await open_page(browser, server.port, pupil_admin)
    teacher = await open_page(browser, server.port, world.users["teacher_member"])
    assert await page.locator("[data-testid=nav-project]").count() == 0  # no project settings
    await page.click("[data-testid=nav-new-room]")
    await page.wait_for_selector("[data-testid=new-room] form[data-testid=room-create]")
    # Only the areas where a pupil admin makes rooms (docs/roles.md: the project activities).
    assert await page.locator("#project-room-area option").all_inner_texts() == ["Activities"]
    view = page.locator("[data-testid=new-room]")
    for other in ("Rename", "Archive", "Delete", "Bots", "Audit log", "Close the project", "Public view"):
        assert await view.get_by_text(other, exact=True).count() == 0, other
    assert await view.locator("table, nav").count() == 0
    await axe(page, "New room (a pupil admin)")
    await screenshot(page, "pupil_admin-new-room")
    await page.fill("#project-room-name", "Our posters")
    await page.press("#project-room-name", "Enter")
    await page.wait_for_selector('[data-testid=room] #composer')  # made, then opened: they write in it
    channel = await page.locator("[data-testid=room]").get_attribute("data-channel")
    await teacher.locator(f'nav a.link[data-channel="{channel}"]', has_text="Our posters").wait_for()  # live
    admin = await bearer(http, world.users["teacher_admin"])
    made = (await http.get(f"/api/spaces/{sid}/audit", headers=admin, params={"action": "room.created"})).json()
    assert [(e["actor_id"], e["details"]) for e in made["entries"]] == [(pupil_admin.id, {"area": "activities", "name": "Our posters"})]
    # The rest of a teacher admin's console is not theirs: not on the page, and refused by the server.
    for section in ("rooms", "project", "bots", "audit"):
        await page.goto(f"http://127.0.0.1:{server.port}/#/project/{sid}/{section}")
        await page.wait_for_selector("[data-testid=home]")
        assert await page.locator("[data-testid=project]").count() == 0
    mine = await bearer(http, pupil_admin)
    room = int(channel.split(":")[1])
    for method, path, body in [
        ("GET", f"/api/spaces/{sid}/bots", None), ("POST", f"/api/spaces/{sid}/bots", {"name": "x"}),
        ("POST", f"/api/spaces/{sid}/close", None), ("GET", f"/api/spaces/{sid}/audit", None),
        ("POST", f"/api/spaces/{sid}/public", {"public": True}), ("POST", f"/api/spaces/{sid}/rooms/{room}/archive", None),
        ("PATCH", f"/api/spaces/{sid}/rooms/{room}", {"name": "Mine now"}), ("DELETE", f"/api/spaces/{sid}/rooms/{room}", None),
        ("POST", f"/api/spaces/{sid}/rooms", {"area": "chat", "name": "Not here"}),
    ]:
        r = await http.request(method, path, headers=mine, json=body)
        assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden"), (method, path, r.text)
    # On a phone: the same screen fits, its controls big enough for a finger.
    await page.set_viewport_size({"width": 360, "height": 740})
    await page.goto(f"http://127.0.0.1:{server.port}/#/new-room/{sid}")
    await page.wait_for_selector("[data-testid=new-room] form")
    assert await page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth") <= 0
    small = await page.evaluate("""() => [...document.querySelectorAll('[data-testid=new-room] button, [data-testid=new-room] input, [data-testid=new-room] select')]
        .filter((b) => b.offsetParent && b.getBoundingClientRect().height < 44).map((b) => b.outerHTML.slice(0, 60))""")
    assert small == [], small
    await open_menu(page)
    assert await page.locator("[data-testid=nav-new-room]").is_visible()
    await screenshot(page, "pupil_admin-new-room-phone")
    for p in (page, teacher):
        await p.context.close()


# -- the audit log's filters and words -----------------------------------------------------------


async def test_the_audit_filters_are_one_row_and_fold_on_a_phone_and_a_join_is_said_once(
    browser, server, world, http, screenshot, axe,
):
    sid = world.space_id
    headers = await bearer(http, world.users["teacher_admin"])
    guest = world.users["outsider"]
    r = await http.post(f"/api/spaces/{sid}/invitations", headers=headers, json={"username": guest.username, "role": "teacher_member"})
    assert r.status_code == 201, r.text
    r = await http.post(f"/api/invitations/{r.json()['invitation']['id']}/accept", headers=await bearer(http, guest))
    assert r.status_code == 200, r.text

    admin = await open_page(browser, server.port, world.users["teacher_admin"])
    await _open_section(admin, sid, "audit")
    joined = admin.locator("[data-testid=audit] tr[data-action='member.joined']", has_text="invitation")
    await joined.wait_for()
    cells = await joined.locator("td").all_inner_texts()
    assert cells[1] == guest.display_name
    assert cells[2] == "joined the project as teacher with an invitation from Teacher Admin"  # the name once, in "Who"
    # A wide screen: the filters on one row, no "Filters" button.
    tops = await admin.evaluate("""() => [...document.querySelectorAll('.audit-filters > *')].map((e) => Math.round(e.getBoundingClientRect().bottom))""")
    assert len(tops) == 5 and max(tops) - min(tops) <= 8, tops
    assert not await admin.locator("[data-action=filters]").is_visible()
    await screenshot(admin, "teacher_admin-project-audit-filters")

    # A phone: folded behind one button; the entries start on the first screen.
    await admin.set_viewport_size({"width": 360, "height": 740})
    toggle = admin.locator("[data-action=filters]")
    assert await toggle.is_visible() and await toggle.get_attribute("aria-expanded") == "false"
    assert not await admin.locator("#audit-action").is_visible()
    first = await admin.locator("[data-testid=audit] tbody tr").first.bounding_box()
    assert first["y"] < 740, first
    await axe(admin, "the audit log on a phone, filters folded")
    await screenshot(admin, "teacher_admin-project-audit-folded-phone")
    await toggle.click()
    assert await toggle.get_attribute("aria-expanded") == "true"
    await admin.select_option("#audit-action", "invitation.accepted")
    await admin.click("[data-action=filter]")
    await admin.wait_for_selector("[data-testid=audit-count]:has-text('Entries: 1.')")
    assert await toggle.inner_text() == "Filters (1 in use)"
    assert await toggle.get_attribute("aria-expanded") == "false"  # folded again: the entries show
    await toggle.click()
    await axe(admin, "the audit log on a phone, filters open")
    await screenshot(admin, "teacher_admin-project-audit-filters-phone")
    await admin.context.close()


# -- the feed: a room nobody made ------------------------------------------------------------------


async def test_the_feed_says_a_room_that_came_with_the_project_was_opened(browser, server, world, http, screenshot):
    """The world's rooms were made by its set-up (storage, as `twinhub demo` and `twinhub admin
    create-room` make them): no member did, and the feed says so without a "Someone"."""
    sid = world.space_id
    headers = await bearer(http, world.users["teacher_admin"])
    assert (await http.post(f"/api/spaces/{sid}/rooms", headers=headers, json={"area": "activities", "name": "Posters"})).status_code == 201
    page = await open_page(browser, server.port, world.users["pupil_member"])
    await page.click("[data-testid=nav-feed]")
    for lang, nobody, somebody in (("en", "The room chat was opened", "Teacher Admin opened the room Posters"),
                                   ("fr", "Le salon chat a été ouvert", "Teacher Admin a ouvert le salon Posters")):
        await page.select_option("#lang", lang)
        lines = page.locator("[data-testid=feed] li.feed-line[data-kind='room.created']")
        await lines.filter(has_text=somebody).wait_for()
        assert await lines.filter(has_text=nobody).count() == 1
        text = await page.locator("[data-testid=feed]").inner_text()
        assert "Someone" not in text and "Quelqu'un" not in text
        if lang == "en":
            await screenshot(page, "pupil-feed-rooms-opened")
    await page.context.close()


# -- Start: where one writes, comments, reads; an invitation's answers -------------------------------


async def _home_sections(page, space_id: int) -> dict[str, list[str]]:
    card = page.locator(f".home-project[data-space='{space_id}']")
    await card.wait_for()
    return await card.evaluate("""(card) => Object.fromEntries([...card.querySelectorAll('h4')].map((h) =>
        [h.textContent, [...h.nextElementSibling.querySelectorAll('a')].map((a) => a.firstChild.textContent.trim())]))""")


async def test_start_lists_rooms_by_what_one_may_do_there(browser, server, world, make_world, http, screenshot, axe):
    sid = world.space_id
    pupil = await open_page(browser, server.port, world.users["pupil_member"])
    assert await _home_sections(pupil, sid) == {
        "Where you can write": ["# activities", "# pupils_corner", "# chat"],
        "Where you can comment": ["Project journal"],  # comments are the journal's: elsewhere, one reads
        "Where you can read": ["# home"],
    }
    await screenshot(pupil, "pupil-home")
    await pupil.context.close()
    parent = await open_page(browser, server.port, world.users["visitor"])
    assert await _home_sections(parent, sid) == {
        "Where you can comment": ["Project journal"], "Where you can read": ["# home", "# activities"],
    }
    await parent.context.close()

    # An invitation: Accept a main button, Decline a quieter one, well apart — wide and on a phone.
    other = await make_world()
    r = await http.post(f"/api/spaces/{other.space_id}/invitations", headers=await bearer(http, other.users["teacher_admin"]),
                        json={"username": world.users["teacher_member"].username, "role": "visitor"})
    assert r.status_code == 201, r.text
    page = await open_page(browser, server.port, world.users["teacher_member"])
    invitation = page.locator("[data-testid=invitations] .invitation")
    await invitation.wait_for()
    for width, height in ((1280, 720), (360, 740)):
        await page.set_viewport_size({"width": width, "height": height})
        look = await invitation.evaluate("""(card) => {
            const [yes, no] = ['accept', 'decline'].map((a) => card.querySelector(`[data-action=${a}]`));
            const [a, b] = [yes, no].map((e) => e.getBoundingClientRect());
            const style = (e) => getComputedStyle(e).backgroundColor;
            return {same: style(yes) === style(no), gap: Math.max(b.left - a.right, b.top - a.bottom), heights: [a.height, b.height]};
        }""")
        assert not look["same"], look
        assert look["gap"] >= 12, look
        if width == 360:
            assert min(look["heights"]) >= 44, look
    await axe(page, "Start with an invitation")
    await screenshot(page, "teacher-home-invitation-phone")
    await page.context.close()
