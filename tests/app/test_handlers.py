"""Sections 2 and 3: receive/send helpers, accept/reject/close, function handlers,
class handlers (WebSocketHandler) and their close codes (in memory)."""

from __future__ import annotations

import logging
import random
from typing import Any

import pytest
import trio
from apphelpers import TIMEOUT, wait_until

from trio_ws import CloseReason, ConnectionClosed, ConnectionRejected
from trio_ws.app import App, DecodeError, WebSocket, WebSocketDisconnect, WebSocketHandler
from trio_ws.testing import TestClient, TestConnection


async def close_of(conn: TestConnection) -> CloseReason:
    """Wait until the app closed ``conn``; the close code and reason the client received."""
    with pytest.raises(ConnectionClosed):
        while True:
            await conn.receive()
    assert not conn.is_connected
    assert conn.ws.closed is not None
    return conn.ws.closed


# -- function handlers -----------------------------------------------------------------


def helpers_app(log: list[Any]) -> App:
    app = App()

    @app.websocket("/echo")
    async def echo(ws: WebSocket) -> None:
        await ws.accept()
        while True:
            kind = await ws.receive_text()
            try:
                if kind == "text":
                    await ws.send_text((await ws.receive_text()).upper())
                elif kind == "bytes":
                    await ws.send_bytes((await ws.receive_bytes())[::-1])
                elif kind == "json":
                    await ws.send_json({"got": await ws.receive_json()})
                elif kind == "close":
                    await ws.close(4000, "asked to close")
                    return
            except DecodeError as err:
                await ws.send_json({"decode_error": err.close_code, "message": str(err)})

    @app.websocket("/iterate")
    async def iterate(ws: WebSocket) -> None:
        await ws.accept()
        async for message in ws:
            await ws.send(message)

    @app.websocket("/disconnect")
    async def disconnect(ws: WebSocket) -> None:
        await ws.accept()
        try:
            await ws.receive_text()
        except WebSocketDisconnect as err:
            log.append(("disconnect", err.reason.code, err.reason.reason))

    @app.websocket("/returns")
    async def returns(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text("bye")

    @app.websocket("/raises")
    async def raises(ws: WebSocket) -> None:
        await ws.accept()
        await ws.receive_text()
        raise RuntimeError("handler bug")

    @app.websocket("/raises-early")
    async def raises_early(ws: WebSocket) -> None:
        raise RuntimeError("before accept")

    @app.websocket("/reject")
    async def reject(ws: WebSocket) -> None:
        await ws.reject(401, "who are you?")

    @app.websocket("/close-early")
    async def close_early(ws: WebSocket) -> None:
        await ws.close()

    @app.websocket("/accept-headers")
    async def accept_headers(ws: WebSocket) -> None:
        assert not ws.accepted and ws.subprotocol is None
        with pytest.raises(RuntimeError):
            ws.connection  # noqa: B018
        with pytest.raises(RuntimeError):
            ws.start_soon(trio.sleep, 1)
        with pytest.raises(RuntimeError):
            ws.member  # noqa: B018
        assert ws.rooms == frozenset()
        await ws.accept(headers=[("X-Extra", "yes")])
        assert ws.accepted and not ws.closed
        await ws.send_text("accepted")
        await ws.receive()

    return app


async def test_receive_and_send_helpers() -> None:
    with trio.fail_after(TIMEOUT):
        async with TestClient(helpers_app([])) as client, client.connect("/echo") as conn:
            await conn.send("text")
            await conn.send("héllo")
            assert await conn.receive() == "HÉLLO"
            await conn.send("bytes")
            await conn.send(b"\x01\x02\x03")
            assert await conn.receive() == b"\x03\x02\x01"
            await conn.send("json")
            await conn.send_json({"a": [1, 2, None], "é": True})
            assert await conn.receive_json() == {"got": {"a": [1, 2, None], "é": True}}
            await conn.send("json")
            await conn.send(b'{"binary": "utf-8 json"}')
            assert await conn.receive_json() == {"got": {"binary": "utf-8 json"}}
            # send_json is compact and keeps non-ASCII
            await conn.send("json")
            await conn.send("[1, 2]")
            assert await conn.receive() == '{"got":[1,2]}'


@pytest.mark.parametrize(
    ("kind", "message", "code", "text"),
    [
        ("text", b"binary", 1003, "expected a text message"),
        ("bytes", "text", 1003, "expected a binary message"),
        ("json", "{not json", 1007, "invalid JSON"),
        ("json", b"\xff\xfe", 1007, "invalid JSON"),
    ],
)
async def test_receive_helpers_raise_decode_error(kind: str, message: str | bytes, code: int, text: str) -> None:
    with trio.fail_after(TIMEOUT):
        async with TestClient(helpers_app([])) as client, client.connect("/echo") as conn:
            await conn.send(kind)
            await conn.send(message)
            answer = await conn.receive_json()
            assert answer["decode_error"] == code
            assert text in answer["message"]
            # the handler goes on
            await conn.send("text")
            await conn.send("still here")
            assert await conn.receive() == "STILL HERE"


async def test_close_with_code_and_reason() -> None:
    with trio.fail_after(TIMEOUT):
        async with TestClient(helpers_app([])) as client, client.connect("/echo") as conn:
            await conn.send("close")
            reason = await close_of(conn)
            assert (reason.code, reason.reason) == (4000, "asked to close")


async def test_async_iteration() -> None:
    with trio.fail_after(TIMEOUT):
        async with TestClient(helpers_app([])) as client, client.connect("/iterate") as conn:
            for message in ("a", b"b", "c" * 1000):
                await conn.send(message)
                assert await conn.receive() == message


async def test_receive_raises_websocket_disconnect_with_the_close_code() -> None:
    log: list[Any] = []
    with trio.fail_after(TIMEOUT):
        async with TestClient(helpers_app(log)) as client:
            async with client.connect("/disconnect") as conn:
                await conn.disconnect(4001, "leaving")
                assert not conn.is_connected
            await wait_until(lambda: bool(log))
    assert log == [("disconnect", 4001, "leaving")]
    assert issubclass(WebSocketDisconnect, ConnectionClosed)


async def test_handler_return_closes_with_1000() -> None:
    with trio.fail_after(TIMEOUT):
        async with TestClient(helpers_app([])) as client, client.connect("/returns") as conn:
            assert await conn.receive() == "bye"
            assert (await close_of(conn)).code == 1000


async def test_handler_exception_closes_with_1011_and_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    with trio.fail_after(TIMEOUT):
        async with TestClient(helpers_app([])) as client:
            async with client.connect("/raises") as conn:
                await conn.send("go")
                assert (await close_of(conn)).code == 1011
            with pytest.raises(ConnectionRejected) as caught:
                async with client.connect("/raises-early"):
                    pass  # pragma: no cover
            assert caught.value.status_code == 500
    errors = [r for r in caplog.records if r.levelno == logging.ERROR and r.name == "trio_ws.app"]
    assert any("/raises" in r.getMessage() and r.exc_info for r in errors)


async def test_reject_and_close_before_accept() -> None:
    with trio.fail_after(TIMEOUT):
        async with TestClient(helpers_app([])) as client:
            with pytest.raises(ConnectionRejected) as caught:
                async with client.connect("/reject"):
                    pass  # pragma: no cover
            assert caught.value.status_code == 401
            assert caught.value.body == b"who are you?"
            with pytest.raises(ConnectionRejected) as caught:
                async with client.connect("/close-early"):
                    pass  # pragma: no cover
            assert caught.value.status_code == 403


async def test_accept_with_headers_and_state_before_accept() -> None:
    with trio.fail_after(TIMEOUT):
        async with TestClient(helpers_app([])) as client, client.connect("/accept-headers") as conn:
            assert await conn.receive() == "accepted"
            assert (b"x-extra", b"yes") in [(k.lower(), v) for k, v in conn.ws.handshake_headers]


async def test_function_handler_background_tasks_end_with_the_handler() -> None:
    app = App()
    started, cancelled, finished = trio.Event(), trio.Event(), trio.Event()

    async def forever() -> None:
        started.set()
        try:
            await trio.sleep_forever()
        finally:
            cancelled.set()

    @app.websocket("/bg")
    async def bg(ws: WebSocket) -> None:
        await ws.accept()
        ws.start_soon(forever)
        await started.wait()
        await ws.receive()
        finished.set()

    with trio.fail_after(TIMEOUT):
        async with TestClient(app) as client, client.connect("/bg") as conn:
            await started.wait()
            assert not cancelled.is_set()
            await conn.send("stop")
            await finished.wait()
            await cancelled.wait()


async def test_failing_background_task_closes_with_1011(caplog: pytest.LogCaptureFixture) -> None:
    app = App()

    async def broken() -> None:
        raise ValueError("background bug")

    @app.websocket("/bg")
    async def bg(ws: WebSocket) -> None:
        await ws.accept()
        ws.start_soon(broken)
        await ws.receive()

    with trio.fail_after(TIMEOUT):
        async with TestClient(app) as client, client.connect("/bg") as conn:
            assert (await close_of(conn)).code == 1011
    assert any("background task" in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records)


# -- class handlers ----------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.received: list[Any] = []
        self.codes: list[int] = []
        self.disconnected = trio.Event()


def endpoint_app(rec: Recorder) -> App:
    app = App()

    class Base(WebSocketHandler):
        async def on_receive(self, data: Any) -> None:
            rec.received.append(data)
            await trio.sleep(random.random() / 1000)
            if data == "close" or data == {"close": True}:
                await self.websocket.close(4002, "server says bye")
            elif data == "raise":
                raise RuntimeError("on_receive bug")
            elif data == "done":
                await self.websocket.send_json(rec.received)
            elif isinstance(data, dict):
                await self.websocket.send_json({"echo": data})
            elif isinstance(data, bytes):
                await self.websocket.send_bytes(data.upper())

        async def on_disconnect(self, close_code: int) -> None:
            rec.codes.append(close_code)
            rec.disconnected.set()

    class Json(Base):
        encoding = "json"

    class Text(Base):
        encoding = "text"

    class Bytes(Base):
        encoding = "bytes"

    class Guarded(Base):
        async def on_connect(self) -> None:
            if self.websocket.headers.get("authorization") != "Bearer good":
                await self.websocket.reject(401, "bad token")
                return
            await self.websocket.accept()

    class Tolerant(Base):
        encoding = "json"

        async def on_decode_error(self, error: DecodeError) -> None:
            await self.websocket.send_json({"error": error.close_code})

    class Default(WebSocketHandler):
        pass

    app.add_route("/json", Json)
    app.add_route("/text", Text)
    app.add_route("/bytes", Bytes)
    app.add_route("/guarded", Guarded)
    app.add_route("/tolerant", Tolerant)
    app.add_route("/default", Default)
    return app


async def test_endpoint_json_encoding() -> None:
    rec = Recorder()
    with trio.fail_after(TIMEOUT):
        async with TestClient(endpoint_app(rec)) as client, client.connect("/json") as conn:
            await conn.send_json({"x": 1})
            assert await conn.receive_json() == {"echo": {"x": 1}}
            await conn.send(b'{"y": 2}')  # UTF-8 JSON in a binary frame decodes too
            assert await conn.receive_json() == {"echo": {"y": 2}}
    assert rec.received == [{"x": 1}, {"y": 2}]


async def test_endpoint_bytes_encoding() -> None:
    rec = Recorder()
    with trio.fail_after(TIMEOUT):
        async with TestClient(endpoint_app(rec)) as client, client.connect("/bytes") as conn:
            await conn.send(b"abc")
            assert await conn.receive() == b"ABC"
            await conn.send("text where bytes are expected")
            reason = await close_of(conn)
        await rec.disconnected.wait()
    assert reason.code == 1003 and reason.reason is not None and "expected a binary message" in reason.reason
    assert rec.codes == [1003]


async def test_endpoint_on_receive_in_arrival_order() -> None:
    rec = Recorder()
    messages = [f"m{i}" for i in range(60)]
    with trio.fail_after(TIMEOUT):
        async with TestClient(endpoint_app(rec)) as client, client.connect("/text") as conn:
            for message in messages:
                await conn.send(message)
            await conn.send("done")
            assert await conn.receive_json() == [*messages, "done"]


@pytest.mark.parametrize(
    ("path", "message", "code", "reason_text"),
    [
        ("/json", "{bad json", 1007, "invalid JSON"),
        ("/json", b"\xff\xff", 1007, "invalid JSON"),
        ("/text", b"\x00binary", 1003, "expected a text message"),
    ],
)
async def test_endpoint_undecodable_message_closes_with_reason(
    path: str, message: str | bytes, code: int, reason_text: str
) -> None:
    rec = Recorder()
    with trio.fail_after(TIMEOUT):
        async with TestClient(endpoint_app(rec)) as client, client.connect(path) as conn:
            await conn.send(message)
            reason = await close_of(conn)
            await rec.disconnected.wait()
    assert reason.code == code
    assert reason.reason is not None and reason_text in reason.reason
    assert rec.received == []
    assert rec.codes == [code]


async def test_endpoint_on_decode_error_override_keeps_the_connection() -> None:
    rec = Recorder()
    with trio.fail_after(TIMEOUT):
        async with TestClient(endpoint_app(rec)) as client, client.connect("/tolerant") as conn:
            await conn.send("{nope")
            assert await conn.receive_json() == {"error": 1007}
            await conn.send_json({"ok": 1})
            assert await conn.receive_json() == {"echo": {"ok": 1}}
            assert conn.is_connected


async def test_endpoint_on_connect_may_reject_with_a_status() -> None:
    rec = Recorder()
    with trio.fail_after(TIMEOUT):
        async with TestClient(endpoint_app(rec)) as client:
            with pytest.raises(ConnectionRejected) as caught:
                async with client.connect("/guarded", headers={"Authorization": "Bearer bad"}):
                    pass  # pragma: no cover
            assert caught.value.status_code == 401
            assert caught.value.body == b"bad token"
            async with client.connect("/guarded", headers={"Authorization": "Bearer good"}) as conn:
                await conn.send("done")
                assert await conn.receive_json() == ["done"]
            await rec.disconnected.wait()
    # on_disconnect runs for the accepted connection only
    assert rec.codes == [1000]


async def test_endpoint_default_methods_accept_and_ignore() -> None:
    with trio.fail_after(TIMEOUT):
        async with TestClient(endpoint_app(Recorder())) as client, client.connect("/default") as conn:
            await conn.send("ignored")
            await conn.send("ignored too")
            assert await conn.get_received() == []
            assert conn.is_connected


async def test_on_disconnect_gets_the_client_close_code() -> None:
    rec = Recorder()
    with trio.fail_after(TIMEOUT):
        async with TestClient(endpoint_app(rec)) as client:
            async with client.connect("/text") as conn:
                await conn.send("hello")
                await conn.disconnect(4001, "client leaves")
            await rec.disconnected.wait()
    assert rec.received == ["hello"]
    assert rec.codes == [4001]


async def test_on_disconnect_gets_the_server_close_code() -> None:
    rec = Recorder()
    with trio.fail_after(TIMEOUT):
        async with TestClient(endpoint_app(rec)) as client, client.connect("/text") as conn:
            await conn.send("close")
            reason = await close_of(conn)
            await rec.disconnected.wait()
    assert (reason.code, reason.reason) == (4002, "server says bye")
    assert rec.codes == [4002]


async def test_on_disconnect_gets_1011_when_on_receive_raises(caplog: pytest.LogCaptureFixture) -> None:
    rec = Recorder()
    with trio.fail_after(TIMEOUT):
        async with TestClient(endpoint_app(rec)) as client, client.connect("/text") as conn:
            await conn.send("raise")
            reason = await close_of(conn)
            await rec.disconnected.wait()
    assert reason.code == 1011
    assert any(r.levelno == logging.ERROR and r.exc_info for r in caplog.records)
    # "on_disconnect(close_code) ... however the connection ended": the code it closed with
    assert rec.codes == [1011]


# -- WebSocket.closed and the renamed class handler -------------------------------------


async def test_websocket_closed_is_the_connections_close_reason() -> None:
    app = App()
    seen: list[Any] = []

    @app.websocket("/close")
    async def handler(ws: WebSocket) -> None:
        seen.append(ws.closed)  # not accepted yet
        await ws.accept()
        seen.append(ws.closed)  # open
        await ws.close(4001, "done")
        seen.append(ws.closed)

    with trio.fail_after(TIMEOUT):
        async with TestClient(app) as client, client.connect("/close") as conn:
            assert (await close_of(conn)).code == 4001
    before, open_, after = seen
    assert before is None and open_ is None
    assert isinstance(after, CloseReason) and after.code == 4001 and after.reason == "done"
    assert after  # true, as the bool it was


async def test_websocket_link_request_and_hub_membership() -> None:
    app = App()
    seen: dict[str, Any] = {}

    @app.websocket("/link")
    async def handler(ws: WebSocket) -> None:
        assert ws.request.path == "/link?x=1" and not ws.request.answered
        assert not ws.in_hub
        with pytest.raises(RuntimeError, match="not been accepted"):
            ws.link  # noqa: B018
        with pytest.raises(RuntimeError, match="accepted WebSocket"):
            await ws.join_hub()
        await ws.accept()
        # A plain WebSocket: its link is its connection, and the accept joined the hub with it.
        seen["same"] = ws.link is ws.connection and ws.member.connection is ws.connection
        seen["in_hub"] = ws.in_hub
        seen["join_again"] = await ws.join_hub() is ws.member
        await ws.send_text("ready")
        await ws.receive()

    with trio.fail_after(TIMEOUT):
        async with TestClient(app) as client, client.connect("/link?x=1") as conn:
            assert await conn.receive() == "ready"
    assert seen == {"same": True, "in_hub": True, "join_again": True}


def test_websocket_endpoint_is_a_deprecated_alias_of_websocket_handler() -> None:
    import trio_ws
    import trio_ws.app
    import trio_ws.app.endpoint

    for module, new in (
        (trio_ws, "trio_ws.WebSocketHandler"),
        (trio_ws.app, "trio_ws.app.WebSocketHandler"),
        (trio_ws.app.endpoint, "trio_ws.app.WebSocketHandler"),
    ):
        with pytest.warns(DeprecationWarning, match=rf"{module.__name__}\.WebSocketEndpoint is deprecated; use {new}"):
            alias = module.WebSocketEndpoint
        assert alias is WebSocketHandler


def test_envelope_is_a_deprecated_alias_of_event_envelope() -> None:
    import trio_ws.app
    import trio_ws.app.envelope
    from trio_ws.app import EventEnvelope

    for module in (trio_ws.app, trio_ws.app.envelope):
        with pytest.warns(DeprecationWarning, match=r"Envelope is deprecated; use trio_ws\.app\.EventEnvelope"):
            alias = module.Envelope
        assert alias is EventEnvelope


async def test_cancelled_room_calls_have_taken_effect_and_concurrent_ones_are_allowed() -> None:
    app = App()
    seen: dict[str, Any] = {}

    @app.websocket("/rooms")
    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        with trio.CancelScope() as scope:
            scope.cancel()
            await ws.join_room("cancelled")  # cancelled at its first checkpoint
        seen["after_cancelled_join"] = ws.rooms
        async with trio.open_nursery() as nursery:
            for room in ("a", "b", "c"):
                nursery.start_soon(ws.join_room, room)
        seen["after_concurrent_joins"] = ws.rooms
        with trio.CancelScope() as scope:
            scope.cancel()
            await ws.leave_room("cancelled")
        seen["after_cancelled_leave"] = ws.rooms
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ws.close_room, "a")
            nursery.start_soon(ws.close_room, "a")
        seen["after_concurrent_close_room"] = ws.rooms
        with pytest.raises(TypeError):
            await ws.send_json({"not": {1, 2}})
        await ws.send_text("done")

    with trio.fail_after(TIMEOUT):
        async with TestClient(app) as client, client.connect("/rooms") as conn:
            assert await conn.receive() == "done"  # the failed send_json sent nothing
    assert seen["after_cancelled_join"] == {"cancelled"}
    assert seen["after_concurrent_joins"] == {"cancelled", "a", "b", "c"}
    assert seen["after_cancelled_leave"] == {"a", "b", "c"}
    assert seen["after_concurrent_close_room"] == {"b", "c"}
