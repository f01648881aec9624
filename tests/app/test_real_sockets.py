"""Sections 1-6 over real sockets: the App served with ``app.serve`` and with
``serve_websocket(app, ..., process_request=app.process_request)`` on
127.0.0.1 (port 0), driven by trio_ws clients and raw TCP."""

from __future__ import annotations

import base64
import json
import logging
import random
import ssl
import uuid
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
import trustme
from apphelpers import SERVE_MODES, TIMEOUT, connect, serving, wait_until
from support.envelopes import RawEvents

import trio_ws
from trio_ws import ConnectionClosed, ConnectionRejected
from trio_ws.app import (
    App,
    CallError,
    CallTimeout,
    EventConnection,
    EventError,
    Namespace,
    WebSocket,
    WebSocketHandler,
)

SECRET = f"s3cret-{uuid.uuid4().hex}"
modes = pytest.mark.parametrize("mode", SERVE_MODES)


class State:
    def __init__(self) -> None:
        self.conns: list[EventConnection] = []
        self.codes: list[int] = []
        self.disconnected = trio.Event()
        self.flags: dict[str, trio.Event] = {}
        self.seen: list[int] = []
        self.active = 0
        self.peak = 0


class Admin(Namespace):
    namespace = "/admin"
    allowed_events = frozenset({"status", "elevate"})

    async def on_connect(self, conn: EventConnection, data: Any) -> bool:
        return data == {"key": "open sesame"}

    async def on_status(self, conn: EventConnection, data: Any) -> str:
        return "ok"

    async def on_elevate(self, conn: EventConnection, data: Any) -> None:
        conn.acl("/admin").allow("shutdown")

    async def on_shutdown(self, conn: EventConnection, data: Any) -> str:
        return "shutting down"


def real_app(state: State, **options: Any) -> App:
    app = App(**options)
    rng = random.Random(99)

    @app.websocket("/info/{kind}/{n:int}", subprotocols=["v1", "v2"], origins=["http://ok.example", None])
    async def info(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_json(
            {
                "url": [ws.url.scheme, ws.url.host, ws.url.port, ws.url.path, ws.url.query],
                "params": [ws.path_params["kind"], ws.path_params["n"], type(ws.path_params["n"]).__name__],
                "query": ws.query_params.getlist("x"),
                "headers": list(ws.headers),
                "custom": ws.headers["x-custom"] if "X-Custom" in ws.headers else None,
                "cookies": ws.cookies,
                "client": [ws.client.host, ws.client.port],
                "subprotocol": ws.subprotocol,
            }
        )
        async for message in ws:
            await ws.send(message)

    @app.websocket("/files/{rest:path}")
    async def files(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text(ws.path_params["rest"])

    @app.websocket("/obj/{key:uuid}")
    async def obj(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text(repr(ws.path_params["key"]))

    @app.websocket("/price/{value:float}")
    async def price(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_json(ws.path_params["value"] * 2)

    class Json(WebSocketHandler):
        encoding = "json"

        async def on_receive(self, data: Any) -> None:
            await self.websocket.send_json({"echo": data})

        async def on_disconnect(self, close_code: int) -> None:
            state.codes.append(close_code)
            state.disconnected.set()

    class Text(Json):
        encoding = "text"

    app.add_route("/json", Json)
    app.add_route("/text", Text)

    @app.on("connect")
    async def connect_(conn: EventConnection, data: Any) -> None:
        state.conns.append(conn)

    @app.on("echo")
    async def echo(conn: EventConnection, data: Any) -> Any:
        return data

    @app.on("whoami")
    async def whoami(conn: EventConnection, data: Any) -> str:
        return conn.id

    @app.on("join")
    async def join(conn: EventConnection, room: str) -> list[str]:
        await conn.join_room(room)
        return sorted(conn.rooms())

    @app.on("say")
    async def say(conn: EventConnection, spec: dict) -> int:
        report = await app.emit("said", spec["text"], to=spec.get("to"), exclude=spec.get("exclude"))
        return int(report) if isinstance(report, bool) else report.recipients

    @app.on("append")
    async def append(conn: EventConnection, i: int) -> int:
        await trio.sleep(rng.random() / 1000)
        state.seen.append(i)
        return i

    @app.on("work")
    async def work(conn: EventConnection, i: int) -> int:
        # The test decides when each call ends: it sets work-<i>-release.
        state.active += 1
        state.peak = max(state.peak, state.active)
        state.flags[f"work-{i}-started"].set()
        try:
            await state.flags[f"work-{i}-release"].wait()
        finally:
            state.active -= 1
        return i

    @app.on("gate")
    async def gate(conn: EventConnection, i: int) -> int:
        await state.flags["gate"].wait()
        return i

    @app.on("login", expected_exceptions=[PermissionError], sensitive_arguments=["password"])
    async def login(conn: EventConnection, data: dict) -> None:
        if data.get("user") == "ann":
            raise PermissionError("wrong password")
        raise RuntimeError("login bug")

    @app.on("find")
    async def find(conn: EventConnection, data: Any) -> None:
        raise EventError("NotFound", "nothing here")

    @app.on("typed")
    async def typed(conn: EventConnection, data: list) -> int:
        return len(data)

    @app.on("background")
    async def background(conn: EventConnection, name: str) -> None:
        async def task() -> None:
            state.flags[name + "-started"].set()
            try:
                await trio.sleep_forever()
            finally:
                state.flags[name + "-cancelled"].set()

        state.flags[name + "-started"] = trio.Event()
        state.flags[name + "-cancelled"] = trio.Event()
        conn.start_soon(task)

    @app.on("quit")
    async def quit_(conn: EventConnection, data: Any) -> None:
        await conn.disconnect(4100, "bye now")

    app.add_namespace(Admin)
    return app


# -- section 1: routing and handshake policies ------------------------------------------


@modes
async def test_routes_converters_and_404(mode: str) -> None:
    key = uuid.uuid4()
    with trio.fail_after(TIMEOUT):
        async with serving(real_app(State()), mode) as server:
            async with connect(server, "/files/a/b/c.txt") as ws:
                assert await ws.get_message() == "a/b/c.txt"
            async with connect(server, f"/obj/{key}") as ws:
                assert await ws.get_message() == repr(key)
            async with connect(server, "/price/1.25") as ws:
                assert json.loads(await ws.get_message()) == 2.5
            for path in ("/nope", "/info/a/notint", "/obj/123", "/price/abc", "/info/a/1/"):
                with pytest.raises(ConnectionRejected) as caught:
                    async with connect(server, path, subprotocols=["v1"]):
                        pass  # pragma: no cover
                assert caught.value.status_code == 404, path
            # the server carries on
            async with connect(server, "/files/x") as ws:
                assert await ws.get_message() == "x"


@modes
async def test_subprotocols_and_origins(mode: str) -> None:
    with trio.fail_after(TIMEOUT):
        async with serving(real_app(State()), mode) as server:
            async with connect(server, "/info/a/1", subprotocols=["zzz", "v2"]) as ws:
                assert ws.subprotocol == "v2"
                assert json.loads(await ws.get_message())["subprotocol"] == "v2"
            for kwargs, status in (
                ({}, 400),
                ({"subprotocols": ["zzz"]}, 400),
                ({"subprotocols": ["v1"], "extra_headers": [("Origin", "http://evil.example")]}, 403),
            ):
                with pytest.raises(ConnectionRejected) as caught:
                    async with connect(server, "/info/a/1", **kwargs):
                        pass  # pragma: no cover
                assert caught.value.status_code == status, kwargs
            async with connect(
                server, "/info/a/1", subprotocols=["v1"], extra_headers=[("Origin", "http://ok.example")]
            ) as ws:
                assert ws.subprotocol == "v1"


# -- section 2: what a handler sees --------------------------------------------------------


@modes
async def test_handler_sees_url_client_headers_cookies(mode: str) -> None:
    with trio.fail_after(TIMEOUT):
        async with serving(real_app(State()), mode) as server:
            headers = [("X-Custom", "hello"), ("Cookie", "sid=42; broken; theme=dark")]
            async with connect(server, "/info/book/7?x=1&x=2&y=", subprotocols=["v1"], extra_headers=headers) as ws:
                info = json.loads(await ws.get_message())
                local = ws.local
                assert isinstance(local, trio_ws.Endpoint)
                assert info["url"] == ["ws", "127.0.0.1", server.port, "/info/book/7", "x=1&x=2&y="]
                assert info["params"] == ["book", 7, "int"]
                assert info["query"] == ["1", "2"]
                assert "x-custom" in info["headers"] and "cookie" in info["headers"]
                assert all(name == name.lower() for name in info["headers"])
                assert info["custom"] == "hello"
                assert info["cookies"] == {"sid": "42", "theme": "dark"}
                assert info["client"] == ["127.0.0.1", local.port]
                assert info["subprotocol"] == "v1"
                await ws.send_message("echo")
                assert await ws.get_message() == "echo"


async def test_url_over_ipv6() -> None:
    app = real_app(State())
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(partial(app.serve, "::1", 0))
            async with trio_ws.open_websocket(
                "::1", server.port, "/info/a/1", use_ssl=False, subprotocols=["v1"]
            ) as ws:
                info = json.loads(await ws.get_message())
            nursery.cancel_scope.cancel()
    assert info["client"][0] == "::1"
    assert info["url"][1] in ("::1", "[::1]")
    assert info["url"][2] == server.port


async def test_url_scheme_is_wss_over_tls() -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    app = real_app(State())
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(partial(app.serve, "127.0.0.1", 0, ssl_context=server_context))
            async with trio_ws.open_websocket(
                "127.0.0.1", server.port, "/info/a/1?x=9", use_ssl=client_context, subprotocols=["v1"]
            ) as ws:
                info = json.loads(await ws.get_message())
            nursery.cancel_scope.cancel()
    assert info["url"][:3] == ["wss", "127.0.0.1", server.port]
    assert info["query"] == ["9"]


# -- section 3: class handlers ------------------------------------------------------------------


@modes
@pytest.mark.parametrize(
    ("path", "message", "code", "text"),
    [("/json", "{oops", 1007, "invalid JSON"), ("/text", b"\x01\x02", 1003, "expected a text message")],
)
async def test_endpoint_decode_errors_close_with_reason(
    mode: str, path: str, message: str | bytes, code: int, text: str
) -> None:
    state = State()
    with trio.fail_after(TIMEOUT):
        async with serving(real_app(state), mode) as server, connect(server, path) as ws:
            await ws.send_message('{"ok": 1}' if path == "/json" else "ok")
            assert json.loads(await ws.get_message()) == {"echo": {"ok": 1} if path == "/json" else "ok"}
            await ws.send_message(message)
            with pytest.raises(ConnectionClosed) as caught:
                await ws.get_message()
            assert caught.value.reason.code == code
            assert caught.value.reason.reason is not None and text in caught.value.reason.reason
            await state.disconnected.wait()
    assert state.codes == [code]


def upgrade_request(path: str) -> bytes:
    key = base64.b64encode(b"0123456789abcdef").decode()
    lines = [
        f"GET {path} HTTP/1.1",
        "Host: 127.0.0.1",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@modes
async def test_endpoint_on_disconnect_gets_1006_when_the_transport_drops(mode: str) -> None:
    state = State()
    with trio.fail_after(TIMEOUT):
        async with serving(real_app(state), mode) as server:
            stream = await trio.open_tcp_stream("127.0.0.1", server.port)
            await stream.send_all(upgrade_request("/json"))
            response = b""
            while b"\r\n\r\n" not in response:
                response += await stream.receive_some(4096)
            assert response.startswith(b"HTTP/1.1 101")
            await trio.aclose_forcefully(stream)
            await state.disconnected.wait()
    assert state.codes == [1006]


@modes
async def test_endpoint_on_disconnect_gets_the_client_code(mode: str) -> None:
    state = State()
    with trio.fail_after(TIMEOUT):
        async with serving(real_app(state), mode) as server:
            async with connect(server, "/text") as ws:
                await ws.aclose(4321, "client done")
            await state.disconnected.wait()
    assert state.codes == [4321]


# -- section 4: events, acks, rooms, namespaces, calls -----------------------------------------


@modes
async def test_events_acks_and_rooms_across_real_clients(mode: str) -> None:
    with trio.fail_after(TIMEOUT):
        async with (
            serving(real_app(State()), mode) as server,
            connect(server, "/ws") as w1,
            connect(server, "/ws") as w2,
            connect(server, "/ws") as w3,
        ):
            a, b, c = RawEvents(w1), RawEvents(w2), RawEvents(w3)
            assert (await a.call("echo", {"x": [1, 2]}))["data"] == {"x": [1, 2]}
            ids = [(await e.call("whoami"))["data"] for e in (a, b, c)]
            assert len(set(ids)) == 3
            assert (await a.call("join", "red"))["data"] == ["red"]
            assert (await b.call("join", "red"))["data"] == ["red"]
            assert (await c.call("say", {"text": "hi red", "to": "red"}))["data"] == 2
            said = {"type": "event", "event": "said", "namespace": "/", "data": "hi red"}
            assert await a.receive() == said
            assert await b.receive() == said
            assert (await a.call("say", {"text": "to c", "to": ids[2]}))["data"] == 1
            assert (await c.receive())["data"] == "to c"
            assert (await a.call("say", {"text": "all but a", "exclude": ids[0]}))["data"] == 2
            assert (await b.receive())["data"] == "all but a"
            assert (await c.receive())["data"] == "all but a"
            # nothing else arrived anywhere
            for events in (a, b, c):
                assert (await events.call("echo", "sync"))["data"] == "sync"
                assert events.stash == []


@modes
async def test_namespace_connect_refusal_and_acl_on_the_wire(mode: str, caplog: pytest.LogCaptureFixture) -> None:
    with trio.fail_after(TIMEOUT):
        async with serving(real_app(State()), mode) as server, connect(server, "/ws") as ws:
            events = RawEvents(ws)
            await events.send({"type": "connect", "namespace": "/admin", "data": {"key": "wrong"}})
            refused = await events.receive_type("connect_error")
            assert refused["namespace"] == "/admin" and refused["error"]["type"] == "Refused"
            await events.send({"type": "connect", "namespace": "/admin", "data": {"key": "open sesame"}})
            assert await events.receive_type("connected") == {"type": "connected", "namespace": "/admin"}
            assert (await events.call("status", namespace="/admin"))["data"] == "ok"
            forbidden = await events.call("shutdown", namespace="/admin")
            assert forbidden["error"]["type"] == "Forbidden"
            elevated = await events.call("elevate", namespace="/admin")
            assert "error" not in elevated and elevated["data"] is None
            assert (await events.call("shutdown", namespace="/admin"))["data"] == "shutting down"
    assert any(r.levelno == logging.WARNING and "'shutdown'" in r.getMessage() for r in caplog.records)


@modes
async def test_server_calls_on_the_wire(mode: str) -> None:
    state = State()
    with trio.fail_after(TIMEOUT):
        async with serving(real_app(state), mode) as server:
            async with connect(server, "/ws") as ws:
                events = RawEvents(ws)
                await events.call("echo")
                conn = state.conns[0]

                async def answer(data: Any = None, error: dict[str, str] | None = None) -> None:
                    call = await events.receive_type("event")
                    reply: dict[str, Any] = {"type": "ack", "id": call["id"]}
                    if error is None:
                        reply["data"] = {"you sent": call["data"]}
                    else:
                        reply["error"] = error
                    await events.send(reply)

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(answer)
                    assert await conn.call("question", 41, timeout=5) == {"you sent": 41}
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(partial(answer, error={"type": "No", "message": "refused"}))
                    with pytest.raises(CallError) as caught:
                        await conn.call("question", timeout=5)
                    assert (caught.value.error_type, caught.value.message) == ("No", "refused")
                with pytest.raises(CallTimeout):
                    await conn.call("ignored", timeout=0.1)
                assert conn.pending_calls == 0

                outcome: list[Any] = []

                async def pending() -> None:
                    start = trio.current_time()
                    try:
                        await conn.call("slow", timeout=30)
                    except Exception as err:
                        outcome.append((err, trio.current_time() - start))

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(pending)
                    await wait_until(lambda: conn.pending_calls == 1)
                    await ws.aclose()
            error, elapsed = outcome[0]
            assert isinstance(error, ConnectionClosed) and elapsed < 5  # well before the call's 30 s timeout
            assert conn.pending_calls == 0


@modes
async def test_background_task_cancelled_when_the_client_leaves(mode: str) -> None:
    state = State()
    with trio.fail_after(TIMEOUT):
        async with serving(real_app(state), mode) as server:
            async with connect(server, "/ws") as ws:
                await RawEvents(ws).call("background", "t")
                await state.flags["t-started"].wait()
                assert not state.flags["t-cancelled"].is_set()
            await state.flags["t-cancelled"].wait()


@modes
async def test_disconnect_from_a_handler_sends_its_code(mode: str) -> None:
    with trio.fail_after(TIMEOUT):
        async with serving(real_app(State()), mode) as server, connect(server, "/ws") as ws:
            await RawEvents(ws).emit("quit")
            with pytest.raises(ConnectionClosed) as caught:
                await ws.get_message()
            assert (caught.value.reason.code, caught.value.reason.reason) == (4100, "bye now")


# -- ordering, concurrency, floods --------------------------------------------------------------


@modes
async def test_ordering_of_200_events(mode: str) -> None:
    state = State()
    with trio.fail_after(TIMEOUT):
        async with serving(real_app(state, max_in_flight=256), mode) as server, connect(server, "/ws") as ws:
            events = RawEvents(ws)
            for i in range(200):
                await events.emit("append", i)
            assert (await events.call("echo", "last"))["data"] == "last"
            assert events.stash == []
    assert state.seen == list(range(200))


@modes
async def test_concurrent_results_return_as_they_complete(mode: str) -> None:
    """With max_concurrency=3, three calls run at once and each result goes out
    when its call ends, whatever the order the calls came in. The test ends the
    calls itself (events, not sleeps): 2, then 3 and 4 on the worker 2 freed,
    then 1, then 0; each is released only after the previous result arrived."""
    state = State()
    for i in range(5):
        state.flags[f"work-{i}-started"] = trio.Event()
        state.flags[f"work-{i}-release"] = trio.Event()
    started = [state.flags[f"work-{i}-started"] for i in range(5)]

    def running() -> list[int]:
        return [i for i in range(5) if started[i].is_set() and not state.flags[f"work-{i}-release"].is_set()]

    with trio.fail_after(TIMEOUT):
        async with serving(real_app(state, max_concurrency=3), mode) as server, connect(server, "/ws") as ws:
            events = RawEvents(ws)
            for i in range(5):
                await events.emit("work", i, call_id=100 + i)
            for i in (0, 1, 2):
                await started[i].wait()
            # The server has read all five calls and has nothing left to do:
            # 3 and 4 wait for a free worker.
            await trio.testing.wait_all_tasks_blocked()
            assert running() == [0, 1, 2] and state.active == 3
            order: list[int] = []
            for i in (2, 3, 4, 1, 0):
                state.flags[f"work-{i}-release"].set()
                ack = await events.receive_type("ack")
                assert ack["id"] == 100 + i, ack
                order.append(ack["data"])
                if i in (2, 3):  # the freed worker takes the next waiting call
                    await started[i + 1].wait()
                await trio.testing.wait_all_tasks_blocked()
                assert state.active == len(running()) <= 3, running()
    assert state.peak == 3
    assert order == [2, 3, 4, 1, 0]


#: Events sent at once by the flooding client in the test below.
FLOOD = 9


@modes
async def test_flood_gets_too_many_requests_while_others_carry_on(mode: str) -> None:
    state = State()
    state.flags["gate"] = trio.Event()
    with trio.fail_after(TIMEOUT):
        app = real_app(state, max_concurrency=2, max_in_flight=4, flood_timeout=0.2)
        async with serving(app, mode) as server, connect(server, "/ws") as w1, connect(server, "/ws") as w2:
            flood, other = RawEvents(w1), RawEvents(w2)
            # Two running, four waiting, and three more: each extra event waits
            # flood_timeout for room, one after the other, before its refusal.
            for i in range(FLOOD):
                await flood.emit("gate", i, call_id=i + 1)
            refused: list[int] = []
            while len(refused) < FLOOD - (2 + 4):
                ack = await flood.receive_type("ack")
                assert ack["error"]["type"] == "TooManyRequests", ack
                refused.append(ack["id"])
            assert (await other.call("echo", "served"))["data"] == "served"
            state.flags["gate"].set()
            accepted: list[int] = []
            while len(accepted) < FLOOD - len(refused):
                ack = await flood.receive_type("ack")
                assert "error" not in ack, ack
                accepted.append(ack["data"])
            assert sorted(accepted + [i - 1 for i in refused]) == list(range(FLOOD))
            assert (await flood.call("echo", "still here"))["data"] == "still here"


# -- RPC errors, bad input, limits ----------------------------------------------------------------


@modes
async def test_rpc_errors_on_the_wire(mode: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="trio_ws")
    with trio.fail_after(TIMEOUT):
        async with serving(real_app(State()), mode) as server, connect(server, "/ws") as ws:
            events = RawEvents(ws)
            expected = await events.call("login", {"user": "ann", "password": SECRET})
            assert expected["error"] == {"type": "PermissionError", "message": "wrong password"}
            internal = await events.call("login", {"user": "bob", "password": SECRET})
            assert internal["error"]["type"] == "InternalError"
            assert (await events.call("find"))["error"] == {"type": "NotFound", "message": "nothing here"}
            assert (await events.call("typed", {"not": "a list"}))["error"]["type"] == "TypeError"
            assert (await events.call("typed", [1, 2]))["data"] == 2
    app_records = [r for r in caplog.records if r.name.startswith("trio_ws.app")]
    assert any(r.levelno == logging.INFO and "login" in r.getMessage() for r in app_records)
    assert any(r.levelno == logging.ERROR and "login" in r.getMessage() for r in app_records)
    assert all(SECRET not in r.getMessage() for r in caplog.records)
    assert SECRET not in caplog.text


@modes
async def test_malformed_envelopes_on_the_wire(mode: str) -> None:
    with trio.fail_after(TIMEOUT):
        async with serving(real_app(State()), mode) as server, connect(server, "/ws") as ws:
            events = RawEvents(ws)
            for message in ("nonsense", "[]", b"\x00binary", '{"type": "event", "event": "", "id": "x"}'):
                await ws.send_message(message)
                answer = await events.receive()
                assert answer["type"] == "error" and answer["error"]["type"] == "BadEnvelope", message
            unknown = await events.call("no-such-event")
            assert unknown["error"]["type"] == "UnknownEvent"
            assert (await events.call("echo", 1))["data"] == 1


@modes
async def test_oversized_message_closes_1009_and_others_carry_on(mode: str) -> None:
    with trio.fail_after(TIMEOUT):
        async with serving(real_app(State()), mode, max_message_size=1024) as server:
            async with connect(server, "/ws", max_message_size=1 << 20) as big, connect(server, "/ws") as small:
                big_events, small_events = RawEvents(big), RawEvents(small)
                assert (await big_events.call("echo", "fits"))["data"] == "fits"
                await big_events.emit("echo", "x" * 5000)
                with pytest.raises(ConnectionClosed) as caught:
                    await big.get_message()
                assert caught.value.reason.code == 1009
                assert (await small_events.call("echo", "fine"))["data"] == "fine"
            async with connect(server, "/ws") as later:
                assert (await RawEvents(later).call("echo", "new"))["data"] == "new"


# -- plain HTTP: the browser client script and static files ------------------------------------


async def http_get(port: int, path: str) -> tuple[int, bytes, bytes]:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            try:
                chunk = await stream.receive_some(65536)
            except trio.BrokenResourceError:
                break
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), head, body


@modes
async def test_client_script_and_static_files(mode: str, tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<h1>hi</h1>")
    (tmp_path / "app.css").write_text("body {}")
    app = real_app(State())
    app.static("/site", tmp_path)
    with trio.fail_after(TIMEOUT):
        async with serving(app, mode) as server:
            status, head, body = await http_get(server.port, "/trio_ws.js")
            assert status == 200
            assert b"javascript" in head.lower()
            assert b"export function connect" in body
            status, head, body = await http_get(server.port, "/site/")
            assert (status, body) == (200, b"<h1>hi</h1>")
            status, head, body = await http_get(server.port, "/site/app.css")
            assert status == 200 and b"text/css" in head
            for path in ("/site/missing.txt", "/site/../secret", "/nothing"):
                status, _, _ = await http_get(server.port, path)
                assert status == 404, path
            # a plain GET to a WebSocket route asks for an upgrade
            status, _, _ = await http_get(server.port, "/ws")
            assert status == 426


def test_static_needs_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        App().static("/x", tmp_path / "missing")


# -- shutting the server down ------------------------------------------------------------------


@modes
@pytest.mark.parametrize("path", ["/ws", "/json", "/info/a/1"])
async def test_server_shutdown_closes_app_connections_with_1001(
    mode: str, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    """serve_websocket documents: "Cancelling stops the server and closes every connection with 1001"."""
    closed: list[trio_ws.CloseReason] = []
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as outer:
            connected = trio.Event()

            async def client(server: trio_ws.WebSocketServer) -> None:
                async with connect(server, path, subprotocols=["v1"]) as ws:
                    connected.set()
                    with pytest.raises(ConnectionClosed) as caught:
                        while True:
                            await ws.get_message()
                    closed.append(caught.value.reason)

            async with serving(real_app(State()), mode) as server:
                outer.start_soon(client, server)
                await connected.wait()
                await trio.sleep(0.05)
    assert [reason.code for reason in closed] == [1001]
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_serve_on_an_address_in_use_raises_the_os_error_itself() -> None:
    """App.serve documents: OSError when the address cannot be bound, never inside a group."""
    with trio.fail_after(TIMEOUT), trio.socket.socket() as taken:
        await taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(OSError) as caught:
            await App().serve("127.0.0.1", port)
        assert caught.value.errno is not None


async def test_serve_records_the_server_on_the_app() -> None:
    app = App()
    with trio.fail_after(TIMEOUT):
        async with serving(app) as server:
            assert app.server is server


@pytest.mark.parametrize("attempt", range(5))
async def test_stopping_the_server_from_a_handler_gives_every_client_1001(
    attempt: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Clients in several namespaces, the server cancelled by one of its handlers: 1001, nothing logged."""
    app = App()
    stop = trio.CancelScope()
    joined = [trio.Event() for _ in range(3)]
    codes: dict[int, int] = {}

    @app.on("stop")
    async def stop_server(conn: EventConnection, data: Any) -> None:
        stop.cancel()

    @app.on("join")
    async def join(conn: EventConnection, room: str) -> None:
        await conn.join_room(room)

    @app.on("join", namespace="/admin")
    async def join_admin(conn: EventConnection, room: str) -> None:
        await conn.join_room(room, namespace="/admin")

    async def client(server: trio_ws.WebSocketServer, index: int) -> None:
        async with connect(server, "/ws") as ws:
            events = RawEvents(ws)
            await events.call("join", "tea")
            await events.send({"type": "connect", "namespace": "/admin"})
            await events.receive_type("connected")
            await events.call("join", "ops", namespace="/admin")
            joined[index].set()
            if index == 0:
                for event in joined:
                    await event.wait()
                await events.emit("stop")
            with pytest.raises(ConnectionClosed) as caught:
                while True:
                    await ws.get_message()
            codes[index] = caught.value.reason.code

    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as clients:
            with stop:
                async with serving(app) as server:
                    for index in range(3):
                        clients.start_soon(client, server, index)
                    await trio.sleep_forever()
    assert codes == {0: 1001, 1: 1001, 2: 1001}
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_a_slow_disconnect_handler_does_not_hold_up_shutdown(caplog: pytest.LogCaptureFixture) -> None:
    """App(disconnect_grace=...) bounds the shielded disconnect handlers."""
    app = App(disconnect_grace=0.2)
    outcome: list[str] = []
    entered = trio.Event()

    @app.on("disconnect")
    async def slow(conn: EventConnection) -> None:
        entered.set()
        try:
            await trio.sleep_forever()
        except trio.Cancelled:
            outcome.append("cancelled")
            raise

    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(partial(app.serve, "127.0.0.1", 0))
            async with connect(server, "/ws") as ws:
                await RawEvents(ws).send({"type": "connect", "namespace": "/"})
                await RawEvents(ws).receive_type("connected")
                nursery.cancel_scope.cancel()
                with pytest.raises(ConnectionClosed):
                    await ws.get_message()
    assert entered.is_set()
    assert outcome == ["cancelled"]
    assert any("disconnect_grace=0.2" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


def test_disconnect_grace_must_be_a_number_of_seconds() -> None:
    with pytest.raises(ValueError, match="disconnect_grace"):
        App(disconnect_grace=-1)
    with pytest.raises(ValueError, match="disconnect_grace"):
        App(disconnect_grace=float("nan"))


async def test_client_unpacks_as_host_and_port() -> None:
    """index.py documents ``host, port = ws.client``."""
    app = App()
    seen: list[tuple[str, int | None]] = []

    @app.websocket("/who")
    async def who(ws: WebSocket) -> None:
        host, port = ws.client
        seen.append((host, port))
        await ws.accept()
        await ws.send_text(f"{host}:{port}")

    with trio.fail_after(TIMEOUT):
        async with serving(app) as server, connect(server, "/who") as ws:
            message = await ws.get_message()
    assert seen[0][0] == "127.0.0.1"
    assert isinstance(seen[0][1], int)
    assert message == f"127.0.0.1:{seen[0][1]}"
