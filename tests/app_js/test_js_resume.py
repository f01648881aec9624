"""The browser client resumes rooms with history after a reconnection (Node + a real App).

The server joins every connection to the room ``news`` (history on) in its
connect handler, after a gate the test opens: the test emits while the
client is away, then lets it join, so what the client receives is decided by
the server's history, not by timing.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import trio
from support.node_ws import NodeWs
from test_js_client import FAST, TIMEOUT, Driver, Server, run_driver, start_server

from trio_ws.app import App, EventConnection
from trio_ws.app.resume import RESUME_PARAM
from trio_ws.hub import HistoryPolicy


@dataclass
class NewsApp:
    """An app whose connections join ``news`` once their gate opens."""

    app: App = field(default_factory=App)
    connections: list[EventConnection] = field(default_factory=list)
    gates: list[trio.Event] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.app.hub.enable_history("news", HistoryPolicy(max_messages=10))

        @self.app.on("connect")
        async def connected(conn: EventConnection, data: Any) -> None:
            index = len(self.connections)
            self.connections.append(conn)
            if index >= len(self.gates):
                self.gates.append(trio.Event())
            await self.gates[index].wait()
            await conn.join_room("news")

    def open_gate(self, index: int) -> None:
        while len(self.gates) <= index:
            self.gates.append(trio.Event())
        self.gates[index].set()

    async def tick(self, value: int) -> None:
        await self.app.emit("tick", value, to="news")


@asynccontextmanager
async def news_session(node_ws: NodeWs) -> AsyncIterator[tuple[NewsApp, Server, Driver]]:
    news = NewsApp()
    news.open_gate(0)
    async with trio.open_nursery() as nursery:
        server = await start_server(nursery, news.app)
        async with run_driver(node_ws) as driver:
            await driver.connect(server.url, options=FAST, listen=["tick"])
            joined = await driver.expect("fire", name="joined")
            assert joined["value"]["recovered"] is False and joined["value"]["reason"] is None
            yield news, server, driver
        nursery.cancel_scope.cancel()


async def ticks(driver: Driver, count: int) -> list[int]:
    return [(await driver.expect("event", event="tick"))["data"] for _ in range(count)]


async def drop_connection(news: NewsApp, driver: Driver) -> None:
    """Close the client's connection with 1012 (service restart): it reconnects by itself."""
    await news.connections[-1].disconnect(1012)
    await driver.expect("fire", name="disconnect")


async def test_a_reconnecting_client_receives_what_it_missed_then_live_events(node_ws: NodeWs) -> None:
    with trio.fail_after(TIMEOUT):
        async with news_session(node_ws) as (news, _, driver):
            for value in (1, 2, 3):
                await news.tick(value)
            assert await ticks(driver, 3) == [1, 2, 3]
            await drop_connection(news, driver)
            for value in (4, 5, 6):
                await news.tick(value)  # the client is away: only the history has them
            await driver.expect("fire", name="connect")
            news.open_gate(1)
            assert await ticks(driver, 3) == [4, 5, 6]
            joined = (await driver.expect("fire", name="joined"))["value"]
            assert joined["recovered"] is True and joined["room"] == "news" and joined["offset"] == 6
            await news.tick(7)
            assert await ticks(driver, 1) == [7]
            # The second connection carried the position of tick 3 in its URL.
            url = (await driver.expect("attempt", n=2))["url"]
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
            sent = query[RESUME_PARAM][0]
            position = news.app.hub.history_position("news")
            assert position is not None
            assert sent == f'{{"/":{{"news":["{position.epoch}",3]}}}}'
            # Nothing arrived twice.
            assert [r["data"] for r in driver.seen("event", event="tick")] == [1, 2, 3, 4, 5, 6, 7]


async def test_a_client_whose_history_is_lost_is_told_not_recovered(node_ws: NodeWs) -> None:
    with trio.fail_after(TIMEOUT):
        async with news_session(node_ws) as (news, _, driver):
            await news.tick(1)
            assert await ticks(driver, 1) == [1]
            await drop_connection(news, driver)
            news.app.hub.discard_history("news")  # as if the server had restarted
            await news.tick(2)
            await driver.expect("fire", name="connect")
            news.open_gate(1)
            joined = (await driver.expect("fire", name="joined"))["value"]
            assert (joined["recovered"], joined["reason"], joined["offset"]) == (False, "epoch", 1)
            await news.tick(3)
            assert await ticks(driver, 1) == [3]
            assert [r["data"] for r in driver.seen("event", event="tick")] == [1, 3]


async def test_a_bad_resume_parameter_is_reported_and_the_room_joined_live(node_ws: NodeWs) -> None:
    news = NewsApp()
    news.open_gate(0)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            server = await start_server(nursery, news.app)
            async with run_driver(node_ws) as driver:
                await news.tick(1)
                url = f"{server.url}?{RESUME_PARAM}=%7Bnot-json"
                await driver.connect(url, options={**FAST, "reconnect": False}, listen=["tick"])
                error = (await driver.expect("fire", name="error"))["value"]
                assert error["type"] == "BadResume" and "not valid JSON" in error["message"]
                joined = (await driver.expect("fire", name="joined"))["value"]
                assert (joined["recovered"], joined["offset"]) == (False, 1)
                await news.tick(2)
                assert await ticks(driver, 1) == [2]
            nursery.cancel_scope.cancel()
