"""A server that stops without closing anything (a stopped process, a frozen host, a dead path
to it) leaves the page's socket open and silent; the page notices by itself: it pings once the
socket has been quiet 20 s, gives it up 30 s later, reconnects and is online again
(realtime/web/static/live.js; docs/protocol.md, "Retrying"). The page's clock is Playwright's,
moved on by hand: the test takes seconds, not the minute it describes."""

from __future__ import annotations

import asyncio
import contextlib

from tests.browser.pages import TIMEOUT
from tests.conftest import PASSWORD


class FreezableProxy:
    """TCP between the page and the server. freeze(): the connections open now stop carrying
    anything, either way, and are never closed — what a stopped server looks like from outside;
    connections made afterwards flow."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.frozen: set[asyncio.StreamWriter] = set()  # the page's side of each frozen connection
        self.held = 0  # bytes the page sent on frozen connections (its ping)
        self.open: list[asyncio.StreamWriter] = []
        self.tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    def freeze(self) -> None:
        self.frozen.update(self.open)

    async def _connection(self, page_reader: asyncio.StreamReader, page_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.open.append(page_writer)
        for source, sink, from_page in ((page_reader, server_writer, True), (server_reader, page_writer, False)):
            task = asyncio.create_task(self._pipe(source, sink, page_writer, from_page))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _pipe(self, source, sink, page_side, from_page: bool) -> None:
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            while data := await source.read(65536):
                if page_side in self.frozen:
                    self.held += len(data) if from_page else 0
                    continue
                sink.write(data)
                await sink.drain()
            if page_side not in self.frozen:
                sink.close()

    async def stop(self) -> None:
        self.server.close()
        for task in list(self.tasks):
            task.cancel()
        for writer in self.open:
            writer.close()


async def test_a_silent_server_is_given_up_and_the_page_reconnects(browser, server, world):
    proxy = FreezableProxy(server.port)
    port = await proxy.start()
    context = await browser.new_context(viewport={"width": 1280, "height": 720}, locale="en-GB")
    await context.clock.install()
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT)
    try:
        await page.goto(f"http://127.0.0.1:{port}/")
        await page.fill("#username", world.users["pupil_member"].username)
        await page.fill("#password", PASSWORD)
        await page.click("form.login button[type=submit]")
        await page.wait_for_selector('[data-testid=status][data-state="online"]')

        proxy.freeze()
        await page.clock.fast_forward(19_000)  # quiet, but not yet for long
        await page.wait_for_timeout(300)
        assert proxy.held == 0, "the page pinged a socket that was not quiet for 20 s"
        await page.clock.fast_forward(6_000)  # past 20 s of quiet: the page asks
        await page.wait_for_timeout(300)
        assert proxy.held > 0, "the page did not ping its quiet socket"
        assert await page.get_attribute("[data-testid=status]", "data-state") == "online"  # not yet given up
        await page.clock.fast_forward(30_000)  # 30 s more and still nothing: given up
        await page.wait_for_selector('[data-testid=status]:not([data-state="online"])')
        await page.clock.fast_forward(2_000)  # the reconnect's back-off (0.5-1 s)
        await page.wait_for_selector('[data-testid=status][data-state="online"]')
    finally:
        await context.close()
        await proxy.stop()
