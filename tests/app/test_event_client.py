"""Tests of trio_ws.app.client: the EventClient against a real App on 127.0.0.1.

Sections: emit and call; server events and server calls; namespaces;
failures that end the client; reconnection.
"""

from __future__ import annotations

import logging
import random
from typing import Any

import pytest
import trio
import trio.testing
from apphelpers import TIMEOUT, serving

import trio_ws
from trio_ws import (
    CallError,
    CallTimeout,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionRejected,
    EventClient,
    NamespaceRefused,
)
from trio_ws.app import App, EventConnection, EventError, Namespace

QUIET = {"ping_interval": None}


class Highest(random.Random):
    """Draws the upper bound: every backoff delay equals its cap (deterministic waits)."""

    def uniform(self, a: float, b: float) -> float:
        return b


class Lounge(Namespace):
    namespace = "/lounge"

    def __init__(self) -> None:
        self.joined: list[Any] = []
        self.left = trio.Event()

    async def on_connect(self, conn: EventConnection, data: Any) -> bool:
        self.joined.append(data)
        if data == "go away":
            raise EventError("Banned", "not you")
        return data != "no"

    async def on_disconnect(self, conn: EventConnection) -> None:
        self.left.set()

    async def on_where(self, conn: EventConnection, data: Any) -> str:
        return "lounge"


def make_app() -> tuple[App, dict[str, Any]]:
    # Several handlers at once: a "slow" call must not hold up the next one,
    # and a server call's answer may need another of the client's calls.
    app = App(max_concurrency=4)
    seen: dict[str, Any] = {"conns": [], "said": [], "said_event": trio.Event()}
    lounge = app.add_namespace(Lounge())
    seen["lounge"] = lounge

    @app.on("connect")
    async def connected(conn: EventConnection, data: Any) -> None:
        seen["conns"].append(conn)

    @app.on("add")
    async def add(conn: EventConnection, data: list) -> int:  # type: ignore[type-arg]
        return int(sum(data))

    @app.on("say")
    async def say(conn: EventConnection, data: Any) -> None:
        seen["said"].append(data)
        seen["said_event"].set()

    @app.on("refuse")
    async def refuse(conn: EventConnection, data: Any) -> None:
        raise EventError("NotAllowed", "no " + str(data))

    @app.on("slow")
    async def slow(conn: EventConnection, data: Any) -> None:
        await trio.sleep_forever()

    @app.on("poke")
    async def poke(conn: EventConnection, data: Any) -> Any:
        """Ask the client something and return what it answered."""
        try:
            return {"answer": await conn.call(data["event"], data.get("data"), timeout=5)}
        except CallError as err:
            return {"error": err.error_type}

    @app.on("broadcast")
    async def broadcast(conn: EventConnection, data: Any) -> None:
        await conn.emit("news", data)
        await conn.emit("news", data + "!")

    @app.on("close_me")
    async def close_me(conn: EventConnection, data: int) -> None:
        await conn.disconnect(data, "bye")

    return app, seen


def url(server: trio_ws.WebSocketServer, path: str = "/ws") -> str:
    return f"ws://127.0.0.1:{server.port}{path}"


# -- emit and call -------------------------------------------------------------------------


async def test_call_returns_the_handlers_answer_and_emit_reaches_the_handler() -> None:
    app, seen = make_app()
    with trio.fail_after(TIMEOUT):
        async with serving(app) as server, EventClient(url(server), **QUIET) as client:
            assert client.connected
            assert await client.call("add", [1, 2, 3]) == 6
            await client.emit("say", "hello")
            await seen["said_event"].wait()
    assert seen["said"] == ["hello"]


async def test_call_errors_carry_the_servers_type_and_message() -> None:
    app, _ = make_app()
    with trio.fail_after(TIMEOUT):
        async with serving(app) as server, EventClient(url(server), **QUIET) as client:
            with pytest.raises(CallError) as refused:
                await client.call("refuse", "way")
            assert (refused.value.error_type, refused.value.message) == ("NotAllowed", "no way")
            with pytest.raises(CallError) as unknown:
                await client.call("nothing-here")
            assert unknown.value.error_type == "UnknownEvent"
            with pytest.raises(CallError) as typed:
                await client.call("add", "not a list")
            assert typed.value.error_type == "TypeError"


async def test_call_timeout(autojump_clock: trio.testing.MockClock) -> None:
    app, _ = make_app()
    async with serving(app) as server, EventClient(url(server), **QUIET) as client:
        start = trio.current_time()
        with pytest.raises(CallTimeout, match=r"no answer to 'slow' within 2\.5 s"):
            await client.call("slow", timeout=2.5)
        assert trio.current_time() - start == pytest.approx(2.5)
        assert await client.call("add", [2]) == 2, "the client still works"


async def test_a_pending_call_fails_with_connection_closed_when_the_connection_ends() -> None:
    app, _ = make_app()
    with trio.fail_after(TIMEOUT):
        async with serving(app) as server, EventClient(url(server), reconnect=False, **QUIET) as client:
            async with trio.open_nursery() as nursery:
                failures: list[BaseException] = []

                async def pending_call() -> None:
                    try:
                        await client.call("slow")
                    except ConnectionClosed as err:
                        failures.append(err)

                nursery.start_soon(pending_call)
                await trio.testing.wait_all_tasks_blocked()
                await client.emit("close_me", 1001)
            assert len(failures) == 1 and failures[0].reason.code == 1001
            assert not client.connected
            with pytest.raises(ConnectionClosed):
                await client.emit("say", "anyone?")


# -- server events and server calls ---------------------------------------------------------


async def test_handlers_get_server_events_in_order_and_answer_server_calls() -> None:
    app, _ = make_app()
    client = EventClient("ws://unused", **QUIET)
    news: list[Any] = []
    got_both = trio.Event()

    @client.on("news")
    async def on_news(data: Any) -> None:
        news.append(data)
        if len(news) == 2:
            got_both.set()

    @client.on("question")
    def on_question(data: Any) -> Any:  # a plain function works too
        return {"echo": data}

    @client.on("refused-question")
    async def on_refused(data: Any) -> Any:
        raise EventError("NoComment", "later")

    with trio.fail_after(TIMEOUT):
        async with serving(app) as server:
            client.url = url(server)
            async with client:
                await client.emit("broadcast", "hi")
                await got_both.wait()
                assert news == ["hi", "hi!"]
                assert await client.call("poke", {"event": "question", "data": 7}) == {"answer": {"echo": 7}}
                assert await client.call("poke", {"event": "refused-question"}) == {"error": "NoComment"}
                assert await client.call("poke", {"event": "unknown-question"}) == {"error": "UnknownEvent"}


async def test_a_handler_may_call_the_server_itself() -> None:
    app, _ = make_app()
    with trio.fail_after(TIMEOUT):
        async with serving(app) as server:
            client = EventClient(url(server), **QUIET)

            @client.on("question")
            async def on_question(data: Any) -> Any:
                return await client.call("add", data)  # the reader keeps reading meanwhile

            async with client:
                assert await client.call("poke", {"event": "question", "data": [4, 5]}) == {"answer": 9}


async def test_a_handlers_exception_ends_the_client_and_comes_out_as_itself(caplog: pytest.LogCaptureFixture) -> None:
    app, _ = make_app()
    with trio.fail_after(TIMEOUT):
        async with serving(app) as server:
            client = EventClient(url(server), **QUIET)

            @client.on("news")
            async def on_news(data: Any) -> None:
                raise KeyError("handler bug")

            with pytest.raises(KeyError, match="handler bug"):
                async with client:
                    await client.emit("broadcast", "x")
                    await trio.sleep_forever()
            assert not client.connected
            assert client.connection is None


# -- namespaces ---------------------------------------------------------------------------------


async def test_namespaces_join_refuse_and_leave() -> None:
    app, seen = make_app()
    lounge: Lounge = seen["lounge"]
    with trio.fail_after(TIMEOUT):
        async with serving(app) as server, EventClient(url(server), **QUIET) as client:
            with pytest.raises(CallError) as not_joined:
                await client.call("where", namespace="/lounge")
            assert not_joined.value.error_type == "NotConnected"
            await client.connect_namespace("/lounge", "me")
            assert client.namespaces == {"/lounge"}
            assert await client.call("where", namespace="/lounge") == "lounge"
            with pytest.raises(NamespaceRefused) as refused:
                await client.connect_namespace("/lounge-2")
            assert refused.value.error_type == "UnknownNamespace"
            await client.leave_namespace("/lounge")
            await lounge.left.wait()
            assert client.namespaces == frozenset()
    assert lounge.joined == ["me"]


@pytest.mark.parametrize(
    ("data", "error_type", "message"), [("no", "Refused", "connection refused"), ("go away", "Banned", "not you")]
)
async def test_a_refused_namespace_reports_the_connect_error(data: str, error_type: str, message: str) -> None:
    app, _ = make_app()
    with trio.fail_after(TIMEOUT):
        async with serving(app) as server, EventClient(url(server), **QUIET) as client:
            with pytest.raises(NamespaceRefused) as refused:
                await client.connect_namespace("/lounge", data)
            assert isinstance(refused.value, CallError)
            assert (refused.value.error_type, refused.value.message) == (error_type, message)
            assert client.namespaces == frozenset()


async def test_a_refused_connection_comes_out_of_async_with() -> None:
    app = App()

    @app.on("connect")
    async def refuse_all(conn: EventConnection, data: Any) -> bool:
        return False

    with trio.fail_after(TIMEOUT):
        async with serving(app) as server:
            with pytest.raises(ConnectionClosedError) as caught:
                async with EventClient(url(server), **QUIET):
                    await trio.sleep_forever()
    assert (caught.value.reason.code, caught.value.reason.reason) == (1008, "connection refused")


async def test_the_first_error_is_raised_from_async_with() -> None:
    app, _ = make_app()
    with trio.fail_after(TIMEOUT):
        async with serving(app) as server:
            with pytest.raises(ConnectionRejected) as caught:
                async with EventClient(url(server, "/nowhere"), **QUIET):
                    pytest.fail("connected")  # pragma: no cover
    assert caught.value.status_code == 404


# -- reconnection ----------------------------------------------------------------------------------


async def test_reconnects_rejoins_namespaces_and_reports_it_did_not_recover(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    app, seen = make_app()
    lounge: Lounge = seen["lounge"]
    client = EventClient("ws://unused", backoff=trio_ws.Backoff(initial_delay=1), **QUIET)
    reports: list[tuple[str, Any]] = []
    reconnected = trio.Event()

    @client.on("disconnect")
    def on_disconnect(data: Any) -> None:
        reports.append(("disconnect", data))

    @client.on("connect")
    def on_connect(data: Any) -> None:
        reports.append(("connect", data))
        reconnected.set()

    caplog.set_level(logging.INFO, logger="trio_ws.client")
    async with serving(app) as server:
        client.url = url(server)
        async with client:
            await client.connect_namespace("/lounge", "me")
            first = client.connection
            await client.emit("close_me", 1012)
            await reconnected.wait()
            assert client.connection is not first and client.connected
            assert (client.reconnects, client.recovered) == (1, False)
            assert await client.call("where", namespace="/lounge") == "lounge", "joined again"
    assert reports == [
        ("disconnect", {"code": 1012, "reason": "bye"}),
        ("connect", {"recovered": False, "reconnects": 1}),
    ]
    assert lounge.joined == ["me", "me"]
    assert len(seen["conns"]) == 2


async def test_a_close_that_is_not_retried_ends_the_client(autojump_clock: trio.testing.MockClock) -> None:
    app, _ = make_app()
    async with serving(app) as server:
        with pytest.raises(ConnectionClosedError) as caught:
            async with EventClient(url(server), disconnect_timeout=30, **QUIET) as client:
                await client.emit("close_me", 1008)
                start = trio.current_time()
                await trio.sleep_forever()
        # Ending the client cancels the connection's reader while it waits for
        # the server's EOF; closing must not sit out disconnect_timeout then.
        elapsed = trio.current_time() - start
    assert caught.value.reason.code == 1008
    assert elapsed < 1, f"the client took {elapsed} s to end after the server's close"


async def test_a_normal_close_by_the_server_leaves_the_client_disconnected(
    autojump_clock: trio.testing.MockClock,
) -> None:
    app, _ = make_app()
    async with serving(app) as server, EventClient(url(server), **QUIET) as client:
        await client.emit("close_me", 1000)
        await trio.sleep(5)
        assert not client.connected and client.reconnects == 0
        with pytest.raises(ConnectionClosed):
            await client.call("add", [1])


async def test_nothing_outlives_the_block() -> None:
    app, seen = make_app()
    with trio.fail_after(TIMEOUT):
        async with serving(app) as server:
            before = len(trio.lowlevel.current_task().child_nurseries)
            async with EventClient(url(server), **QUIET) as client:
                assert await client.call("add", [1]) == 1
            connection = client.connection
            assert connection is None and not client.connected
            assert len(trio.lowlevel.current_task().child_nurseries) == before
            (conn,) = seen["conns"]
            await conn.websocket.connection.wait_closed()
            assert conn.websocket.connection.closed.code == 1000


async def test_wait_connected_returns_once_the_client_has_reconnected(autojump_clock: trio.testing.MockClock) -> None:
    app, _ = make_app()
    async with (
        serving(app) as server,
        EventClient(url(server), backoff=trio_ws.Backoff(initial_delay=3, rng=Highest()), **QUIET) as client,
    ):
        await client.wait_connected()  # at once: connected
        first = client.connection
        await client.emit("close_me", 1013)
        assert first is not None
        await first.wait_closed()
        with pytest.raises(ConnectionClosed):
            await client.emit("say", "while away")
        await client.wait_connected()
        assert client.connected and client.connection is not first
        assert await client.call("add", [5]) == 5


async def test_an_event_client_is_entered_once() -> None:
    app, _ = make_app()
    with trio.fail_after(TIMEOUT):
        async with serving(app) as server, EventClient(url(server), **QUIET) as client:
            with pytest.raises(RuntimeError, match="entered once"):
                await client.__aenter__()


async def test_an_answer_json_cannot_encode_is_an_internal_error_and_ends_the_client() -> None:
    app, _ = make_app()
    with trio.fail_after(TIMEOUT):
        async with serving(app) as server:
            client = EventClient(url(server), **QUIET)

            @client.on("question")
            def on_question(data: Any) -> Any:
                return {1, 2}  # a set: not JSON

            with pytest.raises(TypeError, match="not JSON serializable"):
                async with client:
                    assert await client.call("poke", {"event": "question"}) == {"error": "InternalError"}
                    await trio.sleep_forever()


async def test_joining_a_namespace_times_out_without_an_answer(autojump_clock: trio.testing.MockClock) -> None:
    app = App()

    class Slow(Namespace):
        namespace = "/slow"

        async def on_connect(self, conn: EventConnection, data: Any) -> bool:
            await trio.sleep_forever()
            return True  # pragma: no cover

    app.add_namespace(Slow())
    async with serving(app) as server, EventClient(url(server), **QUIET) as client:
        with pytest.raises(CallTimeout, match="no answer to joining '/slow' within 3"):
            await client.connect_namespace("/slow", timeout=3)
        assert client.namespaces == frozenset()
