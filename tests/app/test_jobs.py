"""Jobs of a namespace (``conn.start_soon(..., namespace=...)``), as gevent-socketio's
``spawn`` / ``kill_local_jobs``: cancelled when the client leaves the namespace,
their exceptions handed to the namespace's error hook (in memory)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio
from apphelpers import TIMEOUT, wait_until

from trio_ws import ConnectionClosed
from trio_ws.app import App, EventConnection, Namespace
from trio_ws.testing import TestClient


class Feed(Namespace):
    namespace = "/feed"

    def __init__(self) -> None:
        self.running: set[str] = set()
        self.ended: list[str] = []
        self.errors: list[tuple[str, str]] = []

    async def on_follow(self, conn: EventConnection, name: str) -> int:
        async def follow() -> None:
            self.running.add(name)
            try:
                await trio.sleep_forever()
            finally:
                self.running.discard(name)
                self.ended.append(name)

        conn.start_soon(follow, namespace="/feed")
        return conn._jobs.count("/feed")

    async def on_explode(self, conn: EventConnection, message: str) -> None:
        async def explode() -> None:
            raise RuntimeError(message)

        conn.start_soon(explode, namespace="/feed")

    async def on_error(self, conn: EventConnection, event: str, error: BaseException) -> None:
        self.errors.append((event, str(error)))


def jobs_app() -> tuple[App, Feed, list[str]]:
    app = App()
    feed = app.add_namespace(Feed())
    assert isinstance(feed, Feed)
    wide: list[str] = []

    @app.on("forever")
    async def forever(conn: EventConnection, data: Any) -> None:
        async def connection_wide() -> None:
            wide.append("started")
            try:
                await trio.sleep_forever()
            finally:
                wide.append("ended")

        conn.start_soon(connection_wide)

    @app.on("early")
    async def early(conn: EventConnection, data: Any) -> str:
        try:
            conn.start_soon(trio.sleep_forever, namespace="/feed")
        except RuntimeError as err:
            return str(err)
        return "started"  # pragma: no cover - the failure this test guards against

    return app, feed, wide


async def test_leaving_the_namespace_cancels_its_jobs_only() -> None:
    app, feed, wide = jobs_app()
    with trio.fail_after(TIMEOUT):
        async with TestClient(app) as client, client.connect("/ws") as conn:
            await conn.emit("forever", ack=True)
            await conn.connect_namespace("/feed")
            assert await conn.emit("follow", "a", namespace="/feed", ack=True) == 1
            assert await conn.emit("follow", "b", namespace="/feed", ack=True) == 2
            await wait_until(lambda: feed.running == {"a", "b"})
            await conn.disconnect_namespace("/feed")
            await wait_until(lambda: sorted(feed.ended) == ["a", "b"])
            assert wide == ["started"]  # the connection's own job runs on
            # Joining again starts with no jobs; they end with the connection too.
            await conn.connect_namespace("/feed")
            assert await conn.emit("follow", "c", namespace="/feed", ack=True) == 1
            await wait_until(lambda: feed.running == {"c"})
        await wait_until(lambda: sorted(feed.ended) == ["a", "b", "c"])
    assert wide == ["started", "ended"]


async def test_a_job_started_outside_its_namespace_is_refused() -> None:
    app, _, _ = jobs_app()
    with trio.fail_after(TIMEOUT):
        async with TestClient(app) as client, client.connect("/ws") as conn:
            answer = await conn.emit("early", ack=True)
    assert "not in namespace '/feed'" in answer


async def test_a_job_exception_reaches_the_namespace_error_hook(caplog: pytest.LogCaptureFixture) -> None:
    app, feed, _ = jobs_app()
    with trio.fail_after(TIMEOUT):
        async with TestClient(app) as client, client.connect("/ws") as conn:
            await conn.connect_namespace("/feed")
            await conn.emit("explode", "boom", namespace="/feed", ack=True)
            await wait_until(lambda: feed.errors == [("explode", "boom")])
            assert conn.is_connected
            assert conn.is_connected_to("/feed")
            assert await conn.emit("follow", "still here", namespace="/feed", ack=True) == 1
    assert any("job 'explode'" in r.getMessage() for r in caplog.records)


async def test_a_job_exception_reaches_a_registered_error_hook() -> None:
    app, _, _ = jobs_app()
    seen: list[tuple[str, str]] = []

    @app.on_error("/feed")
    async def hook(conn: EventConnection, event: str, error: BaseException) -> None:
        seen.append((event, repr(error)))

    with trio.fail_after(TIMEOUT):
        async with TestClient(app) as client, client.connect("/ws") as conn:
            await conn.connect_namespace("/feed")
            await conn.emit("explode", "bang", namespace="/feed", ack=True)
            await wait_until(lambda: seen == [("explode", "RuntimeError('bang')")])


async def test_a_job_that_meets_the_closed_connection_ends_quietly(caplog: pytest.LogCaptureFixture) -> None:
    app = App()
    errors: list[BaseException] = []
    sent = trio.Event()

    @app.on_error_default
    async def hook(conn: EventConnection, event: str, error: BaseException) -> None:  # pragma: no cover - must not run
        errors.append(error)

    @app.on("start")
    async def start(conn: EventConnection, data: Any) -> None:
        async def talk() -> None:
            await conn.disconnect(4000, "job done")
            try:
                await conn.emit("too late")
            finally:
                sent.set()

        conn.start_soon(talk, namespace="/")

    with trio.fail_after(TIMEOUT):
        async with TestClient(app) as client, client.connect("/ws") as conn:
            await conn.emit("start")
            await sent.wait()
            with pytest.raises(ConnectionClosed) as caught:
                await conn.receive()
            assert caught.value.reason.code == 4000
    assert errors == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
