"""Section 5: the in-memory TestClient itself — connect with headers, query and
subprotocols, emit with ack, get_received, disconnect, is_connected, several
clients at once in one room."""

from __future__ import annotations

import contextlib
import logging
import re
from functools import partial
from typing import Any

import pytest
import trio
import trio.testing
from apphelpers import TIMEOUT, wait_until

import trio_ws
from trio_ws import CallError, ConnectionClosed, ConnectionRejected, WebSocketRequest
from trio_ws.app import App, EventConnection, WebSocket
from trio_ws.testing import TestClient


def client_app(closed_codes: list[int] | None = None) -> App:
    app = App()

    @app.on("echo")
    async def echo(conn: EventConnection, data: Any) -> Any:
        return data

    @app.on("request")
    async def request(conn: EventConnection, data: Any) -> dict:
        ws = conn.websocket
        return {
            "headers": {key: ws.headers.getlist(key) for key in ("x-one", "x-two")},
            "query": ws.query_params.multi_items(),
            "subprotocol": ws.subprotocol,
            "path": ws.url.path,
        }

    @app.on("chatter")
    async def chatter(conn: EventConnection, n: int) -> str:
        for i in range(n):
            await conn.emit("tick", i)
        return "done"

    @app.on("hang")
    async def hang(conn: EventConnection, data: Any) -> None:
        await trio.sleep_forever()

    @app.on("fail")
    async def fail(conn: EventConnection, data: Any) -> None:
        raise RuntimeError("nope")

    @app.on("quit")
    async def quit_(conn: EventConnection, data: Any) -> None:
        await conn.disconnect(4100, "as you wish")

    @app.on("join")
    async def join(conn: EventConnection, room: str) -> None:
        await conn.join_room(room)

    @app.on("say")
    async def say(conn: EventConnection, spec: dict) -> None:
        await app.emit("said", spec["text"], to=spec["room"], exclude=conn.id)

    @app.on("disconnect")
    async def disconnect(conn: EventConnection) -> None:
        if closed_codes is not None:
            closed = conn.websocket.connection.closed
            closed_codes.append(closed.code if closed else -1)

    @app.websocket("/raw")
    async def raw(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text("plain text")
        await ws.send_bytes(b"\x00\x01")
        await ws.send_json({"j": 1})
        await ws.receive()

    app.add_event_route("/events2", subprotocols=["ev.1", "ev.2"])
    return app


async def test_connect_with_headers_query_and_subprotocols() -> None:
    with trio.fail_after(TIMEOUT):
        async with TestClient(client_app()) as client:
            async with client.connect(
                "/events2?a=1",
                headers=[("X-One", "1"), ("X-One", "2"), ("X-Two", "3")],
                query={"b": "x y", "c": "é"},
                subprotocols=["ev.2"],
            ) as conn:
                info = await conn.emit("request", ack=True)
                assert info == {
                    "headers": {"x-one": ["1", "2"], "x-two": ["3"]},
                    "query": [["a", "1"], ["b", "x y"], ["c", "é"]],
                    "subprotocol": "ev.2",
                    "path": "/events2",
                }
                assert conn.ws.subprotocol == "ev.2"
            async with client.connect("/ws", headers={"X-Two": "mapping"}, query={"q": "1"}) as conn:
                info = await conn.emit("request", ack=True)
                assert info["headers"] == {"x-one": [], "x-two": ["mapping"]}
                assert info["query"] == [["q", "1"]]
                assert info["subprotocol"] is None
            with pytest.raises(ConnectionRejected) as caught:
                async with client.connect("/events2"):
                    pass  # pragma: no cover
            assert caught.value.status_code == 400


async def test_emit_ack_errors_and_timeouts() -> None:
    with trio.fail_after(TIMEOUT):
        async with TestClient(client_app()) as client, client.connect("/ws") as conn:
            assert await conn.emit("echo", [1, {"a": None}], ack=True) == [1, {"a": None}]
            assert await conn.emit("echo", ack=True) is None
            with pytest.raises(CallError) as caught:
                await conn.emit("fail", ack=True)
            assert caught.value.error_type == "InternalError"
            assert "InternalError" in str(caught.value)
            start = trio.current_time()
            with pytest.raises(TimeoutError):
                await conn.emit("hang", ack=True, timeout=0.1)
            assert trio.current_time() - start < 5  # the 0.1 s timeout ended it (the handler hangs)
    # a hanging handler blocks the (in-order) connection: a new one is fine
    with trio.fail_after(TIMEOUT):
        async with TestClient(client_app()) as client, client.connect("/ws") as conn:
            assert await conn.emit("echo", 1, ack=True) == 1


async def test_emit_ack_while_events_keep_arriving() -> None:
    with trio.fail_after(TIMEOUT):
        async with TestClient(client_app()) as client, client.connect("/ws") as conn:
            assert await conn.emit("chatter", 5, ack=True) == "done"
            received = await conn.get_received()
            assert [m["data"] for m in received] == [0, 1, 2, 3, 4]
            assert all(m["type"] == "event" and m["event"] == "tick" for m in received)
            # get_received clears what it returned; acks are never in it
            assert await conn.get_received() == []


async def test_get_received_decodes_json_and_keeps_other_messages() -> None:
    with trio.fail_after(TIMEOUT):
        async with TestClient(client_app()) as client, client.connect("/raw") as conn:
            assert await conn.get_received() == ["plain text", b"\x00\x01", {"j": 1}]


async def test_receive_helpers_and_closed_connection() -> None:
    with trio.fail_after(TIMEOUT):
        async with TestClient(client_app()) as client, client.connect("/raw") as conn:
            assert await conn.receive_text() == "plain text"
            assert await conn.receive() == b"\x00\x01"
            assert await conn.receive_json() == {"j": 1}
            await conn.send("stop")  # the handler returns: the app closes with 1000
            with pytest.raises(ConnectionClosed) as caught:
                await conn.receive()
            assert caught.value.reason.code == 1000
            assert not conn.is_connected


async def test_messages_received_before_a_close_are_still_readable() -> None:
    with trio.fail_after(TIMEOUT):
        async with TestClient(client_app()) as client, client.connect("/ws") as conn:
            await conn.emit("chatter", 2)
            await conn.emit("quit")
            await trio.testing.wait_all_tasks_blocked()
            assert not conn.is_connected
            assert (await conn.receive_json())["data"] == 0
            assert (await conn.receive_json())["data"] == 1
            with pytest.raises(ConnectionClosed) as caught:
                await conn.receive()
            assert (caught.value.reason.code, caught.value.reason.reason) == (4100, "as you wish")
            with pytest.raises(ConnectionClosed):
                await conn.emit("echo", 1, ack=True)


async def test_emit_ack_raises_connection_closed_when_the_app_closes() -> None:
    with trio.fail_after(TIMEOUT):
        async with TestClient(client_app()) as client, client.connect("/ws") as conn:
            with pytest.raises(ConnectionClosed):
                await conn.emit("quit", ack=True)
            assert not conn.is_connected


async def test_disconnect_and_is_connected() -> None:
    codes: list[int] = []
    with trio.fail_after(TIMEOUT):
        async with TestClient(client_app(codes)) as client:
            async with client.connect("/ws") as conn:
                assert conn.is_connected
                await conn.disconnect(4005, "done here")
                assert not conn.is_connected
                assert conn.ws.closed is not None and conn.ws.closed.code == 4005
            async with client.connect("/ws") as conn:
                await conn.emit("echo", ack=True)
            # leaving the block closes with 1000
            await wait_until(lambda: len(codes) == 2)
    assert codes == [4005, 1000]


async def test_several_clients_in_one_room() -> None:
    with trio.fail_after(TIMEOUT):
        async with (
            TestClient(client_app()) as client,
            client.connect("/ws") as ann,
            client.connect("/ws") as bob,
            client.connect("/ws") as cid,
            client.connect("/ws") as dan,
        ):
            for conn in (ann, bob, cid):
                await conn.emit("join", "lobby", ack=True)
            await dan.emit("join", "kitchen", ack=True)
            await ann.emit("say", {"room": "lobby", "text": "hello"}, ack=True)
            said = {"type": "event", "event": "said", "namespace": "/", "data": "hello"}
            assert await ann.get_received() == []  # excluded: the sender
            assert await bob.get_received() == [said]
            assert await cid.get_received() == [said]
            assert await dan.get_received() == []
            await bob.disconnect()
            await cid.emit("say", {"room": "lobby", "text": "still here?"}, ack=True)
            assert [m["data"] for m in await ann.get_received()] == ["still here?"]


async def test_connect_outside_the_client_block_is_an_error() -> None:
    client = TestClient(client_app())
    with trio.fail_after(TIMEOUT), pytest.raises(RuntimeError):
        async with client.connect("/ws"):
            pass  # pragma: no cover


async def test_a_plain_request_handler_and_options() -> None:
    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        with contextlib.suppress(ConnectionClosed):
            async for message in ws:
                await ws.send_message(message)

    with trio.fail_after(TIMEOUT):
        async with TestClient(handler, max_message_size=100) as client, client.connect("/anything") as conn:
            await conn.send("hi")
            assert await conn.receive() == "hi"
            await conn.send("x" * 200)
            with pytest.raises(ConnectionClosed) as caught:
                await conn.receive()
            assert caught.value.reason.code == 1009


# -- the test client is the server: the same scenarios in memory and over TCP ------


class _BlockError(Exception):
    pass


async def test_an_exception_raised_while_a_connection_block_is_cancelled_comes_out() -> None:
    # trio issue #1559: raised in `finally:` while an enclosing scope cancels the block.
    with trio.fail_after(TIMEOUT):
        async with TestClient(client_app()) as client:
            with pytest.raises(_BlockError), trio.CancelScope() as scope:
                async with client.connect("/ws"):
                    scope.cancel()
                    try:
                        await trio.sleep_forever()
                    finally:
                        raise _BlockError


async def test_an_exception_raised_while_the_client_block_is_cancelled_comes_out() -> None:
    # The client's block holds the server (and a connection's server side) in
    # its nursery; they are cancelled along with the block.
    with trio.fail_after(TIMEOUT), pytest.raises(_BlockError), trio.CancelScope() as scope:
        async with TestClient(client_app()) as client, client.connect("/ws") as conn:
            assert conn.is_connected
            scope.cancel()
            try:
                await trio.sleep_forever()
            finally:
                raise _BlockError


async def _returns_after_accept(request: WebSocketRequest) -> None:
    ws = await request.accept()
    await ws.send_message("hello")


async def _returns_without_accepting(request: WebSocketRequest) -> None:
    pass


async def _raises_before_accepting(request: WebSocketRequest) -> None:
    raise RuntimeError("before accept")


async def _raises_after_accept(request: WebSocketRequest) -> None:
    ws = await request.accept()
    await ws.send_message("about to fail")
    raise RuntimeError("after accept")


async def _rejects(request: WebSocketRequest) -> None:
    await request.reject(401, extra_headers=[("WWW-Authenticate", "Bearer")], body=b"who are you?")


async def _closes_with_a_code(request: WebSocketRequest) -> None:
    ws = await request.accept(subprotocol="v2" if "v2" in request.proposed_subprotocols else None)
    await ws.send_message(f"subprotocol={ws.subprotocol}")
    await ws.aclose(4001, "done here")


class _FailingHook:
    """A handler whose ``process_request`` raises."""

    async def process_request(self, request: WebSocketRequest) -> None:
        raise RuntimeError("hook failed")

    async def __call__(self, request: WebSocketRequest) -> None:  # pragma: no cover - never reached
        await request.accept()


def _app_with_routes() -> App:
    app = App()

    @app.websocket("/only")
    async def only(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text("routed")

    return app


SCENARIOS: dict[str, tuple[Any, str, tuple[Any, ...]]] = {
    # name: (handler, path, expected outcome)
    "returns after accept": (_returns_after_accept, "/", ("closed", 1000, None, ["hello"])),
    "returns without accepting": (_returns_without_accepting, "/", ("rejected", 403)),
    "raises before accepting": (_raises_before_accepting, "/", ("rejected", 500)),
    "raises after accept": (_raises_after_accept, "/", ("closed", 1011, "internal error", ["about to fail"])),
    "rejects": (_rejects, "/", ("rejected", 401, b"who are you?", "Bearer")),
    "closes with a code": (_closes_with_a_code, "/", ("closed", 4001, "done here", ["subprotocol=v2"])),
    "process_request raises": (_FailingHook(), "/", ("rejected", 500)),
    "app route": (_app_with_routes(), "/only", ("closed", 1000, None, ["routed"])),
    "app unknown path": (_app_with_routes(), "/elsewhere", ("rejected", 404)),
}


async def _outcome_in_memory(handler: Any, path: str) -> tuple[Any, ...]:
    async with TestClient(handler) as client:
        try:
            async with client.connect(path, subprotocols=["v1", "v2"]) as conn:
                received = []
                with contextlib.suppress(ConnectionClosed):
                    while True:
                        received.append(await conn.receive())
                closed = conn.ws.closed
        except ConnectionRejected as err:
            return _rejected(err)
    assert closed is not None
    return ("closed", closed.code, closed.reason, received)


async def _outcome_over_tcp(handler: Any, path: str) -> tuple[Any, ...]:
    async with trio.open_nursery() as nursery:
        if isinstance(handler, App):
            server = await nursery.start(partial(handler.serve, "127.0.0.1", 0))
        else:
            hook = getattr(handler, "process_request", None)
            server = await nursery.start(
                partial(trio_ws.serve_websocket, handler, "127.0.0.1", 0, None, process_request=hook)
            )
        try:
            async with trio_ws.open_websocket(
                "127.0.0.1", server.port, path, use_ssl=False, subprotocols=["v1", "v2"]
            ) as ws:
                received = []
                with contextlib.suppress(ConnectionClosed):
                    while True:
                        received.append(await ws.get_message())
                closed = ws.closed
        except ConnectionRejected as err:
            return _rejected(err)
        finally:
            nursery.cancel_scope.cancel()
    assert closed is not None
    return ("closed", closed.code, closed.reason, received)


def _rejected(err: ConnectionRejected) -> tuple[Any, ...]:
    if err.status_code != 401:
        return ("rejected", err.status_code)
    headers = {bytes(name).lower(): bytes(value).decode() for name, value in err.headers}
    return ("rejected", err.status_code, err.body, headers.get(b"www-authenticate"))


def _errors_logged(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str, str]]:
    """(logger, message without the connection number, exception) of each ERROR record."""
    return [
        (r.name, re.sub(r"^\[conn \d+\] ", "", r.getMessage()), repr(r.exc_info[1] if r.exc_info else None))
        for r in caplog.records
        if r.levelno >= logging.ERROR
    ]


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
async def test_the_test_client_and_a_real_server_agree(scenario: str, caplog: pytest.LogCaptureFixture) -> None:
    handler, path, expected = SCENARIOS[scenario]
    with trio.fail_after(TIMEOUT):
        in_memory = await _outcome_in_memory(handler, path)
        memory_errors = _errors_logged(caplog)
        caplog.clear()
        over_tcp = await _outcome_over_tcp(handler, path)
        tcp_errors = _errors_logged(caplog)
    assert in_memory == over_tcp == expected
    assert memory_errors == tcp_errors


async def test_stopping_the_client_closes_open_connections_with_1001() -> None:
    """As cancelling a real server does (see the real-socket suite)."""

    async def lingers(request: WebSocketRequest) -> None:
        ws = await request.accept()
        await ws.get_message()

    client_scope = trio.CancelScope()

    async def run_client(*, task_status: trio.TaskStatus[TestClient]) -> None:
        with client_scope:
            async with TestClient(lingers) as client:
                task_status.started(client)
                await trio.sleep_forever()

    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            client = await nursery.start(run_client)
            async with client.connect("/") as conn:
                await trio.testing.wait_all_tasks_blocked()
                client_scope.cancel()
                with pytest.raises(ConnectionClosed) as caught:
                    await conn.receive()
    assert caught.value.reason.code == 1001
