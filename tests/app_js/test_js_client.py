"""The bundled browser client (``trio_ws/static/trio_ws.js``) against a real App, run with Node.

``js_client_driver.mjs`` imports the client module from its real file (by
file URL) and gives it the ``ws`` package's WebSocket class (Node 20 has no
global WebSocket). The test sends the driver steps as JSON lines on stdin and
reads what happened as JSON lines on stdout (see the driver's header).

``ws@8`` is installed once with npm into ``.cache/node-ws`` at the project
root, as ``tests/interop/test_node_ws.py`` does; the tests skip (with the
reason) when node, or npm with nothing cached yet, is missing. The plain HTTP
test of the static route needs neither.
"""

from __future__ import annotations

import itertools
import json
import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trio
from support.node_ws import NodeWs

import trio_ws
from trio_ws.app import App, CallError, EventConnection

HERE = Path(__file__).resolve().parent
DRIVER = HERE / "js_client_driver.mjs"
PROJECT_ROOT = HERE.parents[1]
CLIENT_MODULE = PROJECT_ROOT / "trio_ws" / "static" / "trio_ws.js"
#: Upper bound for the one-time ``npm install``.
#: Upper bound for one test (Node start-up included).
TIMEOUT = 15
#: How long "nothing more happens" is watched for.
QUIET = 1.0
#: Fast reconnection for the tests (milliseconds).
MIN_DELAY = 100
MAX_DELAY = 400
FAST = {"minDelay": MIN_DELAY, "maxDelay": MAX_DELAY, "ackTimeout": 5000}


# --------------------------------------------------------------------------
# The driver process
# --------------------------------------------------------------------------


class Driver:
    """The running ``js_client_driver.mjs`` and its JSON-line reports."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.records: list[dict[str, Any]] = []
        self._backlog: list[dict[str, Any]] = []
        self._buffer = bytearray()

    async def step(self, op: str, **fields: Any) -> None:
        """Send one step and wait until the driver has carried it out."""
        assert self.process.stdin is not None
        await self.process.stdin.send_all((json.dumps({"op": op, **fields}) + "\n").encode())
        await self.expect("done")

    async def connect(self, url: str, **fields: Any) -> None:
        await self.step("connect", url=url, **fields)

    async def emit(self, event: str, data: Any = None, *, tag: str | None = None, **fields: Any) -> None:
        await self.step("emit", event=event, data=data, tag=tag or event, **fields)

    async def result(self, tag: str) -> dict[str, Any]:
        return await self.expect("result", tag=tag)

    async def state(self) -> dict[str, Any]:
        assert self.process.stdin is not None
        await self.process.stdin.send_all(b'{"op": "state", "tag": "state"}\n')
        return await self.expect("state")

    async def _read_record(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        while b"\n" not in self._buffer:
            chunk = await self.process.stdout.receive_some(65536)
            if not chunk:
                raise EOFError(f"driver exited (returncode={self.process.returncode}) after {self.records!r}")
            self._buffer += chunk
        line, _, rest = bytes(self._buffer).partition(b"\n")
        self._buffer = bytearray(rest)
        record: dict[str, Any] = json.loads(line)
        self.records.append(record)
        if record["kind"] == "failure":
            raise AssertionError(f"the driver failed: {record['message']}")
        return record

    async def expect(self, kind: str, **fields: Any) -> dict[str, Any]:
        """The first unconsumed record of ``kind`` with these field values (waits for it)."""

        def matches(record: dict[str, Any]) -> bool:
            return record["kind"] == kind and all(record.get(k) == v for k, v in fields.items())

        for index, record in enumerate(self._backlog):
            if matches(record):
                return self._backlog.pop(index)
        while True:
            record = await self._read_record()
            if matches(record):
                return record
            self._backlog.append(record)

    async def drain(self, duration: float) -> None:
        """Read whatever arrives during ``duration`` seconds into the backlog."""
        with trio.move_on_after(duration):
            while True:
                self._backlog.append(await self._read_record())

    def seen(self, kind: str, **fields: Any) -> list[dict[str, Any]]:
        return [r for r in self.records if r["kind"] == kind and all(r.get(k) == v for k, v in fields.items())]


@asynccontextmanager
async def run_driver(node_ws: NodeWs) -> AsyncIterator[Driver]:
    """Start the driver; always kill it (by its handle) on the way out."""
    process = await trio.lowlevel.open_process(
        [node_ws.node, str(DRIVER), str(CLIENT_MODULE)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=node_ws.env,
    )
    try:
        driver = Driver(process)
        await driver.expect("ready")
        yield driver
        assert driver.seen("unhandledRejection") == [], "the client left a promise rejection unhandled"
    finally:
        if process.returncode is None:
            process.kill()
        with trio.CancelScope(shield=True), trio.move_on_after(5):
            await process.wait()
            for stream in (process.stdin, process.stdout):
                if stream is not None:
                    await stream.aclose()


# --------------------------------------------------------------------------
# The server side
# --------------------------------------------------------------------------


@dataclass
class Server:
    """An App served on 127.0.0.1 by :func:`start_server`."""

    app: App
    port: int
    scope: trio.CancelScope
    stopped: trio.Event

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    async def stop(self) -> None:
        """Cancel the server and wait until it is gone (see test_server_shutdown_closes_with_going_away)."""
        self.scope.cancel()
        await self.stopped.wait()


async def start_server(nursery: trio.Nursery, app: App, port: int = 0) -> Server:
    scope = trio.CancelScope()
    stopped = trio.Event()

    async def run(*, task_status: trio.TaskStatus[trio_ws.WebSocketServer] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            with scope:
                await app.serve("127.0.0.1", port, task_status=task_status)
        finally:
            stopped.set()

    server: trio_ws.WebSocketServer = await nursery.start(run)
    return Server(app, server.port, scope, stopped)


@dataclass
class Recorder:
    """What the test app's handlers saw."""

    seen: list[tuple[str, Any]] = field(default_factory=list)
    connections: list[EventConnection] = field(default_factory=list)
    changed: trio.Event = field(default_factory=trio.Event)

    def record(self, event: str, data: Any) -> None:
        self.seen.append((event, data))
        self.changed.set()
        self.changed = trio.Event()

    async def wait_for(self, predicate: Callable[[list[tuple[str, Any]]], bool]) -> None:
        while not predicate(self.seen):
            await self.changed.wait()

    async def wait_seen(self, event: str, data: Any = None) -> None:
        await self.wait_for(lambda seen: (event, data) in seen)


class Boom(Exception):
    """An error a handler declares as expected."""


def make_app(recorder: Recorder) -> App:
    """The app the browser client talks to."""
    app = App()
    block = trio.Event()  # never set: "slow" handlers wait until the connection ends

    @app.on("connect")
    async def connected(conn: EventConnection, data: Any) -> None:
        recorder.connections.append(conn)
        recorder.record("connect", conn.id)

    @app.on("note")
    async def note(conn: EventConnection, data: Any) -> None:
        recorder.record("note", data)

    @app.on("echo")
    async def echo(conn: EventConnection, data: Any) -> Any:
        recorder.record("echo", data)
        return {"echo": data}

    @app.on("fail", expected_exceptions=[Boom])
    async def fail(conn: EventConnection, data: Any) -> None:
        raise Boom(f"failed on {data}")

    @app.on("crash")
    async def crash(conn: EventConnection, data: Any) -> None:
        raise RuntimeError("secret detail")

    @app.on("join")
    async def join(conn: EventConnection, data: str) -> str:
        await conn.join_room(data)
        recorder.record("join", data)
        return f"joined {data}"

    @app.on("ask")
    async def ask(conn: EventConnection, data: Any) -> Any:
        """Call the client back and report its answer or error."""
        try:
            answer = await conn.call(data["event"], data.get("data"), timeout=5)
        except CallError as err:
            return {"error": [err.error_type, err.message]}
        return {"answer": answer}

    @app.on("slow")
    async def slow(conn: EventConnection, data: Any) -> None:
        recorder.record("slow", data)
        await block.wait()

    @app.on("connect", namespace="/chat")
    async def chat_connected(conn: EventConnection, data: Any) -> None:
        recorder.record("chat-connect", None)

    @app.on("say", namespace="/chat")
    async def say(conn: EventConnection, data: Any) -> Any:
        recorder.record("chat-say", data)
        await conn.join_room("chatters", namespace="/chat")
        return {"said": data, "namespaces": sorted(conn.namespaces)}

    @app.on("leave-chat")
    async def leave_chat(conn: EventConnection, data: Any) -> list[str]:
        await conn.leave_namespace("/chat")
        return sorted(conn.namespaces)

    return app


@asynccontextmanager
async def js_session(node_ws: NodeWs, **connect: Any) -> AsyncIterator[tuple[trio.Nursery, Server, Recorder, Driver]]:
    """A served app and a driver whose client is connected to it (the first connect fired)."""
    recorder = Recorder()
    async with trio.open_nursery() as nursery:
        server = await start_server(nursery, make_app(recorder))
        async with run_driver(node_ws) as driver:
            options = {**FAST, **connect.pop("options", {})}
            await driver.connect(server.url, options=options, **connect)
            await driver.expect("fire", name="connect")
            await recorder.wait_for(lambda seen: any(event == "connect" for event, _ in seen))
            yield nursery, server, recorder, driver
        nursery.cancel_scope.cancel()


# --------------------------------------------------------------------------
# Events and acknowledgements
# --------------------------------------------------------------------------


async def test_emit_without_ack_reaches_handler(node_ws: NodeWs) -> None:
    with trio.fail_after(TIMEOUT):
        async with js_session(node_ws) as (_, _, recorder, driver):
            await driver.emit("note", {"text": "hello", "n": [1, 2.5, None, True]})
            assert (await driver.result("note")) == {"kind": "result", "tag": "note", "ok": True, "value": None}
            await recorder.wait_seen("note", {"text": "hello", "n": [1, 2.5, None, True]})


async def test_emit_with_ack_resolves_with_return_value(node_ws: NodeWs) -> None:
    with trio.fail_after(TIMEOUT):
        async with js_session(node_ws) as (_, _, recorder, driver):
            await driver.emit("echo", "h\u00e9llo \u2603", ack=True)
            result = await driver.result("echo")
            assert result["ok"] is True
            assert result["value"] == {"echo": "h\u00e9llo \u2603"}
            assert ("echo", "h\u00e9llo \u2603") in recorder.seen


async def test_acks_of_concurrent_emits_are_matched_by_id(node_ws: NodeWs) -> None:
    with trio.fail_after(TIMEOUT):
        async with js_session(node_ws) as (_, _, _, driver):
            for n in range(5):
                await driver.emit("echo", n, ack=True, tag=f"echo-{n}")
            for n in range(5):
                assert (await driver.result(f"echo-{n}"))["value"] == {"echo": n}


async def test_error_answer_rejects_with_call_error(node_ws: NodeWs) -> None:
    with trio.fail_after(TIMEOUT):
        async with js_session(node_ws) as (_, _, _, driver):
            await driver.emit("fail", 7, ack=True)
            result = await driver.result("fail")
            assert result["ok"] is False
            assert result["error"] == {
                "name": "Error",
                "message": "Boom: failed on 7",
                "type": "Boom",
                "isCallError": True,
            }


async def test_unexpected_handler_error_rejects_with_internal_error(node_ws: NodeWs) -> None:
    with trio.fail_after(TIMEOUT):
        async with js_session(node_ws) as (_, _, _, driver):
            await driver.emit("crash", None, ack=True)
            result = await driver.result("crash")
            assert result["ok"] is False
            assert result["error"]["isCallError"] is True
            assert result["error"]["type"] == "InternalError"
            assert "secret" not in result["error"]["message"]


async def test_wrong_data_type_rejects_with_type_error(node_ws: NodeWs) -> None:
    with trio.fail_after(TIMEOUT):
        async with js_session(node_ws) as (_, _, _, driver):
            # "join" declares str data: a number is refused before the handler runs.
            await driver.emit("join", 5, ack=True)
            result = await driver.result("join")
            assert result["ok"] is False
            assert result["error"]["isCallError"] is True
            assert result["error"]["type"] == "TypeError"


async def test_unknown_event_rejects_with_unknown_event(node_ws: NodeWs) -> None:
    with trio.fail_after(TIMEOUT):
        async with js_session(node_ws) as (_, _, _, driver):
            await driver.emit("no-such-event", None, ack=True)
            result = await driver.result("no-such-event")
            assert result["ok"] is False
            assert result["error"]["isCallError"] is True
            assert result["error"]["type"] == "UnknownEvent"
            assert "no-such-event" in result["error"]["message"]


async def test_ack_timeout_rejects(node_ws: NodeWs) -> None:
    with trio.fail_after(TIMEOUT):
        async with js_session(node_ws) as (_, _, recorder, driver):
            await driver.emit("slow", 1, ack=True, timeout=200)
            await recorder.wait_seen("slow", 1)
            result = await driver.result("slow")
            assert result["ok"] is False
            assert result["error"]["isCallError"] is False
            assert "no answer to slow within" in result["error"]["message"]
            assert (await driver.state())["pending"] == 0


# --------------------------------------------------------------------------
# Server -> client
# --------------------------------------------------------------------------


async def test_on_receives_server_emit_to_a_joined_room(node_ws: NodeWs) -> None:
    with trio.fail_after(TIMEOUT):
        async with js_session(node_ws, listen=["news"]) as (_, server, _, driver):
            await driver.emit("join", "lobby", ack=True)
            assert (await driver.result("join"))["value"] == "joined lobby"
            report = await server.app.emit("news", {"headline": "trio_ws ships"}, to="lobby")
            assert not isinstance(report, bool)
            assert report.recipients == 1
            event = await driver.expect("event", event="news")
            assert event["data"] == {"headline": "trio_ws ships"}
            # An emit to another room does not reach it.
            await server.app.emit("news", "elsewhere", to="kitchen")
            await server.app.emit("news", "again", to="lobby")
            assert (await driver.expect("event", event="news"))["data"] == "again"


async def test_server_call_answered_by_js_handler(node_ws: NodeWs) -> None:
    answers = {"question": {"return": {"answer": 42, "list": ["a", None]}}}
    with trio.fail_after(TIMEOUT):
        async with js_session(node_ws, answers=answers) as (_, _, recorder, driver):
            # From a handler...
            await driver.emit("ask", {"event": "question", "data": "life?"}, ack=True)
            assert (await driver.result("ask"))["value"] == {"answer": {"answer": 42, "list": ["a", None]}}
            assert (await driver.expect("call", event="question"))["data"] == "life?"
            # ...and from outside any handler.
            conn = recorder.connections[-1]
            assert await conn.call("question", [1, 2], timeout=5) == {"answer": 42, "list": ["a", None]}
            assert (await driver.expect("call", event="question"))["data"] == [1, 2]
            assert conn.pending_calls == 0


async def test_server_call_js_error_becomes_call_error(node_ws: NodeWs) -> None:
    answers = {"risky": {"throw": {"name": "ValueError", "message": "no can do"}}}
    with trio.fail_after(TIMEOUT):
        async with js_session(node_ws, answers=answers) as (_, _, recorder, driver):
            conn = recorder.connections[-1]
            with pytest.raises(CallError) as exc_info:
                await conn.call("risky", None, timeout=5)
            assert exc_info.value.error_type == "ValueError"
            assert exc_info.value.message == "no can do"
            # Through a handler, too.
            await driver.emit("ask", {"event": "risky"}, ack=True)
            assert (await driver.result("ask"))["value"] == {"error": ["ValueError", "no can do"]}


async def test_server_call_to_unknown_js_event_is_unknown_event(node_ws: NodeWs) -> None:
    with trio.fail_after(TIMEOUT):
        async with js_session(node_ws) as (_, _, recorder, driver):
            with pytest.raises(CallError) as exc_info:
                await recorder.connections[-1].call("nobody-listens", 1, timeout=5)
            assert exc_info.value.error_type == "UnknownEvent"
            assert driver.seen("call") == []


async def test_throwing_handler_of_a_server_emit_is_contained(node_ws: NodeWs) -> None:
    answers = {"risky": {"throw": {"name": "Error", "message": "handler bug"}}}
    with trio.fail_after(TIMEOUT):
        async with js_session(node_ws, answers=answers, listen=["after"]) as (_, _, recorder, driver):
            conn = recorder.connections[-1]
            await conn.emit("risky", 1)
            await driver.expect("call", event="risky")
            await conn.emit("after", 2)
            assert (await driver.expect("event", event="after"))["data"] == 2
    # run_driver checked on the way out that no promise rejection went unhandled.


# --------------------------------------------------------------------------
# Namespaces
# --------------------------------------------------------------------------


async def test_non_default_namespace(node_ws: NodeWs) -> None:
    with trio.fail_after(TIMEOUT):
        async with js_session(node_ws, options={"namespace": "/chat"}, listen=["shout"]) as (
            _,
            server,
            recorder,
            driver,
        ):
            assert (await driver.expect("fire", name="namespace"))["value"] == "/chat"
            await recorder.wait_seen("chat-connect")
            await driver.emit("say", "hi", ack=True)
            result = await driver.result("say")
            assert result["value"] == {"said": "hi", "namespaces": ["/", "/chat"]}
            # Events of the default namespace are still reachable per emit...
            await driver.emit("echo", 1, ack=True, namespace="/")
            assert (await driver.result("echo"))["value"] == {"echo": 1}
            # ...while the socket's namespace has no "echo".
            await driver.emit("echo", 2, ack=True, tag="echo-chat")
            assert (await driver.result("echo-chat"))["error"]["type"] == "UnknownEvent"
            # A server emit to the namespace's room reaches the client.
            report = await server.app.emit("shout", "to chatters", to="chatters", namespace="/chat")
            assert not isinstance(report, bool)
            assert report.recipients == 1
            assert (await driver.expect("event", event="shout"))["data"] == "to chatters"


async def test_the_server_taking_the_socket_out_of_its_namespace_fires_namespace_disconnect(
    node_ws: NodeWs,
) -> None:
    with trio.fail_after(TIMEOUT):
        async with js_session(node_ws, options={"namespace": "/chat"}) as (_, _, _, driver):
            assert (await driver.expect("fire", name="namespace"))["value"] == "/chat"
            await driver.emit("leave-chat", ack=True, namespace="/")
            assert (await driver.result("leave-chat"))["value"] == ["/"]
            assert (await driver.expect("fire", name="namespace_disconnect"))["value"] == "/chat"
            # The connection stays open: the default namespace still answers.
            await driver.emit("echo", 3, ack=True, namespace="/")
            assert (await driver.result("echo"))["value"] == {"echo": 3}
            assert driver.seen("fire", name="disconnect") == []


async def test_unknown_namespace_reports_connect_error(node_ws: NodeWs) -> None:
    with trio.fail_after(TIMEOUT):
        async with js_session(node_ws, options={"namespace": "/nowhere"}) as (_, _, _, driver):
            error = await driver.expect("fire", name="error")
            assert error["value"]["type"] == "UnknownNamespace"
            await driver.emit("say", "x", ack=True)
            assert (await driver.result("say"))["error"]["type"] == "NotConnected"


# --------------------------------------------------------------------------
# Disconnection and reconnection
# --------------------------------------------------------------------------


async def test_pending_acks_reject_when_connection_drops(node_ws: NodeWs) -> None:
    with trio.fail_after(TIMEOUT):
        async with js_session(node_ws, options={"reconnect": False}) as (_, _, recorder, driver):
            await driver.emit("slow", 1, ack=True)
            await recorder.wait_seen("slow", 1)
            await recorder.connections[-1].disconnect(4001, "go away")
            result = await driver.result("slow")
            assert result["ok"] is False
            assert result["error"]["isCallError"] is False
            assert "connection closed (4001)" in result["error"]["message"]
            disconnect = await driver.expect("fire", name="disconnect")
            assert disconnect["value"] == {"code": 4001, "reason": "go away"}
            assert (await driver.state())["pending"] == 0


async def test_reconnects_with_backoff_to_a_restarted_server(node_ws: NodeWs) -> None:
    with trio.fail_after(TIMEOUT):
        async with js_session(node_ws) as (nursery, server, _, driver):
            await driver.emit("echo", "before", ack=True, tag="before")
            assert (await driver.result("before"))["value"] == {"echo": "before"}
            attempts_before = len(driver.seen("attempt"))
            await server.stop()
            await driver.expect("fire", name="disconnect")
            # Down for a while: the client keeps trying, further and further apart.
            await driver.drain(1.5)
            failed = driver.seen("attempt")[attempts_before:]
            assert len(failed) >= 3, failed
            gaps = [(b["t"] - a["t"]) for a, b in itertools.pairwise(failed)]
            for k, gap in enumerate(gaps, start=1):
                base = min(MAX_DELAY, MIN_DELAY * 2**k)
                assert base * 0.5 - 20 <= gap <= base + 250, (k, gaps)
            recorder = Recorder()
            restarted = await start_server(nursery, make_app(recorder), server.port)
            assert restarted.port == server.port
            await driver.expect("fire", name="connect")
            await recorder.wait_for(lambda seen: any(event == "connect" for event, _ in seen))
            await driver.emit("note", "after")
            await recorder.wait_seen("note", "after")
            await driver.emit("echo", "after", ack=True, tag="after")
            assert (await driver.result("after"))["value"] == {"echo": "after"}
            assert (await driver.state())["connected"] is True


async def test_server_shutdown_closes_with_going_away(node_ws: NodeWs) -> None:
    with trio.fail_after(TIMEOUT):
        async with js_session(node_ws, options={"reconnect": False}) as (_, server, _, driver):
            await server.stop()
            disconnect = await driver.expect("fire", name="disconnect")
            assert disconnect["value"]["code"] == 1001


async def test_emits_while_disconnected_are_queued_and_sent_after_reconnect(node_ws: NodeWs) -> None:
    with trio.fail_after(TIMEOUT):
        async with js_session(node_ws, options={"minDelay": 300, "maxDelay": 300}) as (nursery, server, _, driver):
            await server.stop()
            await driver.expect("fire", name="disconnect")
            for n in range(3):
                await driver.emit("note", n, tag=f"note-{n}")
            state = await driver.state()
            assert state["connected"] is False
            assert state["queued"] == 3
            recorder = Recorder()
            await start_server(nursery, make_app(recorder), server.port)
            await driver.expect("fire", name="connect")
            await recorder.wait_for(lambda seen: [d for e, d in seen if e == "note"] == [0, 1, 2])
            assert (await driver.state())["queued"] == 0


async def test_ack_emit_while_disconnected_resolves_after_reconnect(node_ws: NodeWs) -> None:
    """An emit(..., {ack: true}) made while down is queued and answered once the client is back.

    Its message is sent after the reconnect, so its promise must not be
    rejected by the failed reconnection attempts in between.
    """
    with trio.fail_after(TIMEOUT):
        async with js_session(node_ws, options={"minDelay": 100, "maxDelay": 100}) as (nursery, server, _, driver):
            await server.stop()
            await driver.expect("fire", name="disconnect")
            await driver.emit("echo", "queued", ack=True, tag="queued")
            await driver.drain(0.5)  # some reconnection attempts fail meanwhile
            recorder = Recorder()
            await start_server(nursery, make_app(recorder), server.port)
            await driver.expect("fire", name="connect")
            await recorder.wait_seen("echo", "queued")  # the queued message was sent...
            result = await driver.result("queued")  # ...so its answer should resolve the promise
            assert result == {"kind": "result", "tag": "queued", "ok": True, "value": {"echo": "queued"}}


async def test_close_stops_reconnecting(node_ws: NodeWs) -> None:
    with trio.fail_after(TIMEOUT):
        async with js_session(node_ws) as (_, _, recorder, driver):
            attempts = len(driver.seen("attempt"))
            await driver.step("close", code=1000, reason="bye")
            disconnect = await driver.expect("fire", name="disconnect")
            assert disconnect["value"] == {"code": 1000, "reason": "bye"}
            await driver.drain(QUIET)
            assert len(driver.seen("attempt")) == attempts
            assert len(recorder.connections) == 1
            assert (await driver.state())["connected"] is False


async def test_close_while_waiting_to_reconnect_stops_reconnecting(node_ws: NodeWs) -> None:
    with trio.fail_after(TIMEOUT):
        async with js_session(node_ws, options={"minDelay": 300, "maxDelay": 300}) as (nursery, server, _, driver):
            await server.stop()
            await driver.expect("fire", name="disconnect")
            await driver.step("close")
            attempts = (await driver.state())["attempts"]
            recorder = Recorder()
            await start_server(nursery, make_app(recorder), server.port)
            await driver.drain(QUIET)
            assert len(driver.seen("attempt")) == attempts, "the client reconnected after close()"
            assert recorder.connections == []


# --------------------------------------------------------------------------
# The static route
# --------------------------------------------------------------------------


async def http_get(port: int, path: str) -> tuple[int, dict[str, str], bytes]:
    """A raw HTTP/1.1 GET over a trio socket: status, headers (lower-case names), body."""
    async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
        request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
        await stream.send_all(request.encode())
        data = bytearray()
        while b"\r\n\r\n" not in data:
            chunk = await stream.receive_some(65536)
            assert chunk, f"connection closed before the headers ended: {bytes(data)!r}"
            data += chunk
        head, _, body = bytes(data).partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers["content-length"]) if "content-length" in headers else None
        received = bytearray(body)
        while length is None or len(received) < length:
            chunk = await stream.receive_some(65536)
            if not chunk:
                break
            received += chunk
        return int(status_line.split()[1]), headers, bytes(received)


async def test_static_route_serves_the_client_module() -> None:
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            server = await start_server(nursery, make_app(Recorder()))
            status, headers, body = await http_get(server.port, "/trio_ws.js")
            assert status == 200
            media_type = headers["content-type"].split(";")[0].strip().lower()
            assert media_type in ("text/javascript", "application/javascript")
            assert body == CLIENT_MODULE.read_bytes()
            assert int(headers["content-length"]) == len(body)
            status, _, _ = await http_get(server.port, "/trio_ws.js.map")
            assert status == 404
            nursery.cancel_scope.cancel()
