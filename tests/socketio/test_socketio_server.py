"""SocketIOServer (trio_ws.socketio.server) against the official socket.io-client in Node, and raw frames."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
from support.node_ws import NodeWs
from support.sio import SIO_CLIENT, check_full_scenario, open_raw, run_node, run_python_peer, serve_full_scenario

from trio_ws import ConnectionClosed, ConnectionRejected, WebSocketServer, open_websocket_url, serve_websocket
from trio_ws.socketio import EngineConfig, Handshake, SessionClosed, decode_packet
from trio_ws.socketio.server import (
    MAX_EARLY_PACKETS,
    ConnectRefused,
    EngineRequestError,
    Socket,
    SocketIOServer,
    check_request,
)


@pytest.fixture
async def served(nursery: trio.Nursery) -> AsyncIterator[tuple[SocketIOServer, WebSocketServer]]:
    # Pings far apart: on a loaded machine a ping must not land between the packets a test expects.
    sio = SocketIOServer(config=EngineConfig(ping_interval=30, ping_timeout=2.0))
    server = await nursery.start(serve_websocket, sio, "127.0.0.1", 0, None)
    yield sio, server


async def test_official_client_events_acks_and_binary_both_ways(
    node_socketio: NodeWs, served: tuple[SocketIOServer, WebSocketServer]
) -> None:
    sio, server = served
    seen, disconnected = serve_full_scenario(sio)
    records = await run_node(node_socketio, SIO_CLIENT, f"http://127.0.0.1:{server.port}/", "full")
    # socket.disconnect() sends DISCONNECT for the namespace before closing.
    assert await check_full_scenario(records, seen, disconnected, "client namespace disconnect") == "websocket"


async def test_python_socketio_client_events_acks_and_binary_both_ways(
    python_socketio: None, served: tuple[SocketIOServer, WebSocketServer]
) -> None:
    sio, server = served
    seen, disconnected = serve_full_scenario(sio)
    records = await run_python_peer(server.port)
    # python-socketio's disconnect() closes the WebSocket without a DISCONNECT packet reaching us.
    assert await check_full_scenario(records, seen, disconnected, "transport close") == "websocket"


async def test_official_client_namespaces_refusal_and_unknown_namespace(
    node_socketio: NodeWs, served: tuple[SocketIOServer, WebSocketServer]
) -> None:
    sio, server = served

    @sio.on_connect("/private")
    async def private(socket: Socket, auth: Any) -> None:
        if auth != {"token": "right"}:
            raise ConnectRefused("Not authorized", {"hint": "send a token"})

    @sio.on("where", namespace="/chat")
    async def where(socket: Socket) -> str:
        return socket.namespace

    records = await run_node(node_socketio, SIO_CLIENT, f"http://127.0.0.1:{server.port}/", "namespaces")
    assert sorted(records, key=lambda r: r["event"]) == [
        {"event": "chat-where", "answer": ["/chat"], "same_manager": True},
        {"event": "refused", "message": "Not authorized", "data": {"hint": "send a token"}},
        {"event": "unknown", "message": "Invalid namespace"},
    ]


# Raw frames: what the protocol test suites send --------------------------------------------


async def test_raw_pings_are_answered(nursery: trio.Nursery) -> None:
    sio = SocketIOServer(config=EngineConfig(ping_interval=0.05, ping_timeout=2.0))
    server = await nursery.start(serve_websocket, sio, "127.0.0.1", 0, None)
    with trio.fail_after(10):
        async with open_raw(server.port) as ws:
            handshake = Handshake.from_packet(decode_packet(await ws.get_message()))
            assert (handshake.ping_interval, handshake.ping_timeout) == (0.05, 2.0)
            await ws.send_message("40")
            pings = 0
            while (message := await ws.get_message()) == "2":  # a ping may come before the answer
                pings += 1
                await ws.send_message("3")
            assert message.startswith('40{"sid":"')
            for _ in range(3 - min(pings, 2)):
                assert await ws.get_message() == "2"  # the server's ping
                await ws.send_message("3")


async def test_raw_handshake_and_events(served: tuple[SocketIOServer, WebSocketServer]) -> None:
    sio, server = served

    @sio.on("message-with-ack")
    async def with_ack(socket: Socket, *args: Any) -> tuple[Any, ...]:
        return args

    with trio.fail_after(10):
        async with open_raw(server.port) as ws:
            handshake = Handshake.from_packet(decode_packet(await ws.get_message()))
            assert (handshake.upgrades, handshake.ping_interval, handshake.ping_timeout) == ((), 30, 2.0)
            assert handshake.max_payload == 1_000_000
            await ws.send_message("40")
            connect = await ws.get_message()
            assert connect.startswith('40{"sid":"')
            await ws.send_message('42456["message-with-ack",1,"2",{"3":[false]}]')
            assert await ws.get_message() == '43456[1,"2",{"3":[false]}]'
            await ws.send_message(
                '452-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]'
            )
            await ws.send_message(b"\x01\x02\x03")
            await ws.send_message(b"\x04\x05\x06")
            assert await ws.get_message() == '462-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]'
            assert await ws.get_message() == b"\x01\x02\x03"
            assert await ws.get_message() == b"\x04\x05\x06"


async def messages_until_closed(ws: Any) -> tuple[list[str | bytes], Any]:
    """Every message the server sends until it closes; returns them and the close reason."""
    messages: list[str | bytes] = []
    while True:
        try:
            messages.append(await ws.get_message())
        except ConnectionClosed as closed:
            return messages, closed.reason


@pytest.mark.parametrize(
    ("frames", "close_code"),
    [
        (["4abc"], 1008),  # unknown Socket.IO packet type
        (["40", "42{}"], 1008),  # invalid payload format
        (["40", '42abc["message-with-ack",1]'], 1008),  # invalid ack id
        (["40", "41", '42["after disconnect"]', "4abc"], 1008),  # packets for a left namespace are ignored
        (["abc"], 1008),  # invalid Engine.IO packet
        (["40", b"\x00"], 1008),  # binary message nobody announced
    ],
)
async def test_raw_bad_input_closes_the_session(
    served: tuple[SocketIOServer, WebSocketServer], frames: list[str | bytes], close_code: int
) -> None:
    sio, server = served
    calls: list[Any] = []

    @sio.on("after disconnect")
    async def after(socket: Socket) -> None:
        calls.append(socket)

    with trio.fail_after(10):
        async with open_raw(server.port) as ws:
            await ws.get_message()  # open packet
            for frame in frames:
                await ws.send_message(frame)
            messages, reason = await messages_until_closed(ws)
    # The CONNECT answer (when the frames connect), then the WebSocket closes: no
    # Engine.IO close packet over WebSocket, as the reference server.
    assert [m for m in messages if not str(m).startswith("40{")] == []
    assert reason.code == close_code
    assert calls == []


async def test_packets_sent_while_the_connect_handler_runs_are_handled_after_it(
    served: tuple[SocketIOServer, WebSocketServer],
) -> None:
    """A client's packets wait for a slow connect handler, then are handled: an ack comes back."""
    sio, server = served
    release = trio.Event()
    seen: list[str] = []

    @sio.on_connect()
    async def slow(socket: Socket, auth: Any) -> None:
        await release.wait()

    @sio.on("note")
    async def note(socket: Socket, text: str) -> str:
        seen.append(text)
        return text.upper()

    with trio.fail_after(10):
        async with open_raw(server.port) as ws:
            await ws.get_message()
            for frame in ("40", '42["note","a"]', '421["note","b"]'):
                await ws.send_message(frame)
            await trio.sleep(0.2)  # the server has read them (it has nothing to answer yet)
            assert seen == []  # nothing handled while the namespace is connecting
            release.set()
            assert (await ws.get_message()).startswith('40{"sid":"')
            assert await ws.get_message() == '431["B"]'
    assert sorted(seen) == ["a", "b"]


async def test_a_disconnect_sent_while_the_connect_handler_runs_applies_after_it(
    served: tuple[SocketIOServer, WebSocketServer],
) -> None:
    """CONNECT, DISCONNECT, EVENT sent at once: the event is for a left namespace, however slow the connect."""
    sio, server = served
    release = trio.Event()
    seen: list[str] = []

    @sio.on_connect()
    async def slow(socket: Socket, auth: Any) -> None:
        await release.wait()

    @sio.on("note")
    async def note(socket: Socket, text: str) -> None:
        seen.append(text)

    @sio.on_disconnect()
    async def gone(socket: Socket, reason: str) -> None:
        seen.append(reason)

    with trio.fail_after(10):
        async with open_raw(server.port) as ws:
            await ws.get_message()
            for frame in ("40", '42["note","before"]', "41", '42["note","after disconnect"]'):
                await ws.send_message(frame)
            await trio.sleep(0.2)  # the server has read them
            release.set()
            assert (await ws.get_message()).startswith('40{"sid":"')
            await ws.send_message("1")  # end the session: every handler has run when it is closed
            await messages_until_closed(ws)
    assert sorted(seen) == ["before", "client namespace disconnect"]


async def test_packets_sent_while_a_refused_connect_ran_are_dropped(
    served: tuple[SocketIOServer, WebSocketServer],
) -> None:
    sio, server = served
    release = trio.Event()
    seen: list[str] = []

    @sio.on_connect()
    async def refuse(socket: Socket, auth: Any) -> None:
        await release.wait()
        raise ConnectRefused("no")

    @sio.on("note")
    async def note(socket: Socket, text: str) -> None:
        seen.append(text)

    with trio.fail_after(10):
        async with open_raw(server.port) as ws:
            await ws.get_message()
            await ws.send_message("40")
            await ws.send_message('42["note","early"]')
            await trio.sleep(0.2)  # the server has read it
            release.set()
            assert await ws.get_message() == '44{"message":"no"}'
            await ws.send_message('42["note","late"]')
            await trio.testing.wait_all_tasks_blocked()
    assert seen == []


async def test_too_many_packets_before_the_namespace_connected_close_the_session(
    served: tuple[SocketIOServer, WebSocketServer],
) -> None:
    sio, server = served

    @sio.on_connect()
    async def never(socket: Socket, auth: Any) -> None:
        await trio.sleep_forever()

    with trio.fail_after(10):
        async with open_raw(server.port) as ws:
            await ws.get_message()
            await ws.send_message("40")
            for _ in range(MAX_EARLY_PACKETS + 1):
                await ws.send_message('42["note"]')
            messages, reason = await messages_until_closed(ws)
    assert (messages, reason.code) == ([], 1008)


async def test_client_close_packet_ends_the_session(served: tuple[SocketIOServer, WebSocketServer]) -> None:
    sio, server = served
    reasons: list[str] = []

    @sio.on_disconnect()
    async def gone(socket: Socket, reason: str) -> None:
        reasons.append(reason)

    with trio.fail_after(10):
        async with open_raw(server.port) as ws:
            await ws.get_message()
            await ws.send_message("40")
            await ws.get_message()
            await ws.send_message("1")
            messages, reason = await messages_until_closed(ws)
    assert (messages, reason.code) == ([], 1000)
    assert reasons == ["client close"]


async def test_missing_connect_within_connect_timeout_closes(nursery: trio.Nursery) -> None:
    sio = SocketIOServer(connect_timeout=0.2)
    server = await nursery.start(serve_websocket, sio, "127.0.0.1", 0, None)
    with trio.fail_after(10):
        async with open_raw(server.port) as ws:
            await ws.get_message()
            messages, reason = await messages_until_closed(ws)
    assert messages == []  # no Engine.IO close packet over WebSocket
    assert (reason.code, reason.reason) == (1000, "no namespace connected within connect_timeout")


async def test_missing_pong_ends_the_session(nursery: trio.Nursery) -> None:
    sio = SocketIOServer(config=EngineConfig(ping_interval=0.1, ping_timeout=0.2))
    server = await nursery.start(serve_websocket, sio, "127.0.0.1", 0, None)
    with trio.fail_after(10):
        async with open_raw(server.port) as ws:
            await ws.get_message()
            await ws.send_message("40")
            await ws.get_message()
            messages, reason = await messages_until_closed(ws)
    assert messages == ["2"]  # one ping, never answered
    assert (reason.code, reason.reason) == (1000, "no pong within ping_timeout=0.2 s")


async def test_message_over_max_payload_closes(nursery: trio.Nursery) -> None:
    sio = SocketIOServer(config=EngineConfig(max_payload=100))
    server = await nursery.start(serve_websocket, sio, "127.0.0.1", 0, None)
    with trio.fail_after(10):
        async with open_raw(server.port) as ws:
            await ws.get_message()
            await ws.send_message("40")
            await ws.get_message()
            await ws.send_message('42["x","' + "y" * 100 + '"]')
            messages, reason = await messages_until_closed(ws)
    assert messages == []
    assert (reason.code, reason.reason) == (1008, "Engine.IO packet of 110 bytes exceeds max_payload=100")


@pytest.mark.parametrize(
    ("query", "code", "message"),
    [
        ("transport=websocket", 5, "Unsupported protocol version"),
        ("EIO=3&transport=websocket", 5, "Unsupported protocol version"),
        ("EIO=4", 0, "Transport unknown"),
        ("EIO=4&transport=polling", 0, "Transport unknown"),
        ("EIO=4&transport=websocket&sid=abc", 1, "Session ID unknown"),
    ],
)
async def test_bad_query_is_answered_with_400_and_the_engineio_error(
    served: tuple[SocketIOServer, WebSocketServer], query: str, code: int, message: str
) -> None:
    _, server = served
    with trio.fail_after(10), pytest.raises(ConnectionRejected) as info:
        async with open_raw(server.port, query):
            pass
    assert info.value.status_code == 400
    assert json.loads(info.value.body or b"") == {"code": code, "message": message}


async def test_other_paths_get_404(served: tuple[SocketIOServer, WebSocketServer]) -> None:
    _, server = served
    with trio.fail_after(10), pytest.raises(ConnectionRejected) as info:
        async with open_websocket_url(f"ws://127.0.0.1:{server.port}/elsewhere/?EIO=4&transport=websocket"):
            pass
    assert info.value.status_code == 404


def test_check_request_rules() -> None:
    assert check_request("/socket.io/?EIO=4&transport=websocket", "/socket.io/")
    assert check_request("/socket.io?EIO=4&transport=websocket&t=abc", "/socket.io/")
    assert not check_request("/other/?EIO=4&transport=websocket", "/socket.io/")
    with pytest.raises(EngineRequestError, match=r"Engine\.IO error 5: Unsupported protocol version"):
        check_request("/socket.io/?EIO=4&EIO=4&transport=websocket", "/socket.io/")


def test_server_options_are_checked() -> None:
    assert SocketIOServer().connect_timeout == 45.0  # Socket.IO's default, as documented
    with pytest.raises(ValueError, match="connect_timeout must be > 0, not 0"):
        SocketIOServer(connect_timeout=0)


async def test_server_call_timeout_disconnect_and_errors(
    served: tuple[SocketIOServer, WebSocketServer], caplog: pytest.LogCaptureFixture
) -> None:
    sio, server = served
    results: dict[str, Any] = {}
    reasons: list[str] = []
    kicked = trio.Event()

    @sio.on("call-me")
    async def call_me(socket: Socket) -> None:
        try:
            await socket.call("never-answered", timeout=0.05)
        except TimeoutError as err:
            results["timeout"] = str(err)
        results["answer"] = await socket.call("answer", 1, timeout=5)

    @sio.on("crash")
    async def crash(socket: Socket) -> None:
        raise RuntimeError("handler bug")

    @sio.on("unencodable")
    async def unencodable(socket: Socket) -> Any:
        return {1, 2}

    @sio.on("kick")
    async def kick(socket: Socket) -> None:
        await socket.disconnect()
        await socket.disconnect()  # idempotent
        with pytest.raises(SessionClosed, match="is disconnected"):
            await socket.emit("late")
        kicked.set()

    @sio.on_disconnect()
    async def gone(socket: Socket, reason: str) -> None:
        reasons.append(reason)

    with trio.fail_after(10):
        async with open_raw(server.port) as ws:
            await ws.get_message()
            await ws.send_message("40")
            await ws.get_message()
            await ws.send_message('42["call-me"]')
            assert await ws.get_message() == '420["never-answered"]'
            assert await ws.get_message() == '421["answer",1]'
            await ws.send_message("430[]")  # too late: the call has timed out, ignored
            await ws.send_message("4399[]")  # nobody asked: ignored
            await ws.send_message('431["one",{"two":2}]')
            await ws.send_message('421["crash"]')  # no acknowledgement from a crashed handler
            await ws.send_message('422["unencodable"]')
            await ws.send_message('423["nothing registered"]')  # unknown events are ignored
            await ws.send_message("40")  # a second CONNECT to a connected namespace changes nothing
            await ws.send_message('42["kick"]')
            assert await ws.get_message() == "41"
            await kicked.wait()
    assert results["timeout"] == "no acknowledgement of 'never-answered' within 0.05 s"
    assert results["answer"] == ["one", {"two": 2}]
    assert reasons == ["server namespace disconnect"]
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert "handler of event 'crash' (namespace '/') failed" in errors
    assert "acknowledgement of event 'unencodable' cannot be encoded" in errors


async def test_call_ends_with_session_closed_when_the_client_leaves(
    served: tuple[SocketIOServer, WebSocketServer],
) -> None:
    sio, server = served
    outcome: list[BaseException] = []
    done = trio.Event()

    @sio.on("call-me")
    async def call_me(socket: Socket) -> None:
        try:
            await socket.call("never-answered", timeout=30)
        except SessionClosed as err:
            outcome.append(err)
            done.set()

    with trio.fail_after(10):
        async with open_raw(server.port) as ws:
            await ws.get_message()
            await ws.send_message("40")
            await ws.get_message()
            await ws.send_message('42["call-me"]')
            assert await ws.get_message() == '420["never-answered"]'
            await ws.send_message("41")  # leave the namespace while the server waits
            await done.wait()
    assert "disconnected before answering 'never-answered'" in str(outcome[0])


async def test_connect_handler_crash_is_logged_and_refused(
    served: tuple[SocketIOServer, WebSocketServer], caplog: pytest.LogCaptureFixture
) -> None:
    sio, server = served

    @sio.on_connect()
    async def broken(socket: Socket, auth: Any) -> None:
        raise KeyError("oops")

    with trio.fail_after(10):
        async with open_raw(server.port) as ws:
            await ws.get_message()
            await ws.send_message("40")
            assert await ws.get_message() == '44{"message":"Internal error"}'
            # Still not connected: events are ignored, a new CONNECT is answered again.
            await ws.send_message('42["x"]')
            await ws.send_message("40")
            assert await ws.get_message() == '44{"message":"Internal error"}'
    assert any(r.getMessage() == "connect handler of namespace '/' failed" for r in caplog.records)


async def test_client_connect_error_packet_is_invalid(served: tuple[SocketIOServer, WebSocketServer]) -> None:
    _, server = served
    with trio.fail_after(10):
        async with open_raw(server.port) as ws:
            await ws.get_message()
            await ws.send_message('44{"message":"x"}')
            messages, reason = await messages_until_closed(ws)
    assert messages == []
    assert (reason.code, reason.reason) == (1008, "a client does not send CONNECT_ERROR packets")


async def test_server_shutdown_closes_with_1001_so_clients_reconnect(nursery: trio.Nursery) -> None:
    sio = SocketIOServer()
    reasons: list[str] = []
    connected = trio.Event()

    @sio.on_connect()
    async def hello(socket: Socket, auth: Any) -> None:
        connected.set()

    @sio.on_disconnect()
    async def gone(socket: Socket, reason: str) -> None:
        reasons.append(reason)

    server_scope = trio.CancelScope()

    async def run_server(task_status: trio.TaskStatus[WebSocketServer]) -> None:
        with server_scope:
            await serve_websocket(sio, "127.0.0.1", 0, None, task_status=task_status)

    server = await nursery.start(run_server)
    with trio.fail_after(10):
        async with open_raw(server.port) as ws:
            await ws.get_message()
            await ws.send_message("40")
            await ws.get_message()
            await connected.wait()
            server_scope.cancel()
            messages, reason = await messages_until_closed(ws)
    assert messages == []  # no Engine.IO close: the client sees a lost transport and reconnects
    assert reason.code == 1001
    assert reasons == ["server shutting down"]


async def test_dropped_websocket_is_a_transport_close(
    served: tuple[SocketIOServer, WebSocketServer], caplog: pytest.LogCaptureFixture
) -> None:
    sio, server = served
    reasons: list[str] = []
    gone = trio.Event()

    @sio.on_disconnect("/chat")
    async def on_gone(socket: Socket, reason: str) -> None:
        reasons.append(reason)
        gone.set()
        raise ValueError("disconnect handler bug")

    with trio.fail_after(10):
        async with open_raw(server.port) as ws:
            await ws.get_message()
            await ws.send_message("40/chat,")
            assert (await ws.get_message()).startswith('40/chat,{"sid":"')
        # Leaving the block closes the WebSocket without an Engine.IO close packet.
        await gone.wait()
    assert reasons == ["transport close"]
    assert any(r.getMessage() == "disconnect handler of namespace '/chat' failed" for r in caplog.records)


async def test_cancelled_emit_is_still_sent_and_concurrent_calls_get_their_own_answers(
    served: tuple[SocketIOServer, WebSocketServer],
) -> None:
    sio, server = served
    answers: dict[str, list[Any]] = {}
    finished = trio.Event()

    @sio.on("go")
    async def go(socket: Socket) -> None:
        with trio.CancelScope() as scope:
            scope.cancel()
            await socket.emit("queued before the cancel")
        with trio.CancelScope() as scope:
            scope.cancel()
            await socket.call("cancelled call")  # its answer arrives later and is dropped

        async def ask(name: str) -> None:
            answers[name] = await socket.call(name, timeout=5)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ask, "first")
            nursery.start_soon(ask, "second")
        finished.set()

    with trio.fail_after(10):
        async with open_raw(server.port) as ws:
            await ws.get_message()
            await ws.send_message("40")
            await ws.get_message()
            await ws.send_message('42["go"]')
            assert await ws.get_message() == '42["queued before the cancel"]'
            assert await ws.get_message() == '420["cancelled call"]'
            calls = [str(await ws.get_message()), str(await ws.get_message())]
            ids = {json.loads(call[3:])[0]: call[2] for call in calls}  # '42<id>["<name>"]'
            assert sorted(ids) == ["first", "second"]
            assert sorted(ids.values()) == ["1", "2"]
            await ws.send_message('430["late"]')
            for call in reversed(calls):  # answered in the other order
                name = json.loads(call[3:])[0]
                await ws.send_message(f'43{ids[name]}["for {name}"]')
            await finished.wait()
    assert answers == {"first": ["for first"], "second": ["for second"]}


async def test_long_polling_request_gets_426(served: tuple[SocketIOServer, WebSocketServer]) -> None:
    _, server = served
    with trio.fail_after(10):
        stream = await trio.open_tcp_stream("127.0.0.1", server.port)
        async with stream:
            await stream.send_all(b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: localhost\r\n\r\n")
            response = b""
            while chunk := await stream.receive_some(4096):  # the server closes after answering
                response += chunk
    assert response.startswith(b"HTTP/1.1 426 ")


async def test_client_that_stops_reading_is_closed_at_max_buffered(nursery: trio.Nursery) -> None:
    sio = SocketIOServer(config=EngineConfig(max_buffered=10))
    outcome: dict[str, Any] = {}
    ended = trio.Event()

    @sio.on("flood")
    async def flood(socket: Socket) -> None:
        sent = 0
        try:
            while sent < 2000:  # loopback buffers fill long before this
                await socket.emit("blob", os.urandom(100_000))
                sent += 1
        except SessionClosed as err:
            outcome["error"], outcome["count"] = str(err), sent
        ended.set()

    @sio.on_disconnect()
    async def gone(socket: Socket, reason: str) -> None:
        outcome["reason"] = reason

    server = await nursery.start(serve_websocket, sio, "127.0.0.1", 0, None)
    with trio.fail_after(20):
        async with open_raw(server.port) as ws:
            await ws.get_message()
            await ws.send_message("40")
            await ws.get_message()
            await ws.send_message('42["flood"]')
            await ended.wait()  # without reading anything meanwhile
            messages, reason = await messages_until_closed(ws)
    assert "packets unread by the client (max_buffered=10)" in outcome["error"]
    assert outcome["count"] < 2000
    assert outcome["reason"] == "buffer full"
    assert (reason.code, reason.reason) == (1008, outcome["error"][:100])
    assert len(messages) < 2 * outcome["count"]  # what was queued when it overflowed was dropped


async def test_connect_timeout_closes_a_client_refused_everywhere(nursery: trio.Nursery) -> None:
    sio = SocketIOServer(connect_timeout=0.2)

    @sio.on_connect()
    async def refuse(socket: Socket, auth: Any) -> None:
        raise ConnectRefused("no")

    server = await nursery.start(serve_websocket, sio, "127.0.0.1", 0, None)
    with trio.fail_after(10):
        async with open_raw(server.port) as ws:
            await ws.get_message()
            await ws.send_message("40")
            messages, reason = await messages_until_closed(ws)
    assert messages == ['44{"message":"no"}']
    assert (reason.code, reason.reason) == (1000, "no namespace connected within connect_timeout")


async def test_connect_timeout_spares_a_connected_client(nursery: trio.Nursery) -> None:
    sio = SocketIOServer(connect_timeout=0.05)

    @sio.on("ping-me")
    async def ping_me(socket: Socket) -> str:
        return "still here"

    server = await nursery.start(serve_websocket, sio, "127.0.0.1", 0, None)
    with trio.fail_after(10):
        async with open_raw(server.port) as ws:
            await ws.get_message()
            await ws.send_message("40")
            await ws.get_message()
            await trio.sleep(0.3)  # well past connect_timeout (a real peer: real time)
            await ws.send_message('421["ping-me"]')
            assert await ws.get_message() == '431["still here"]'


async def test_reserved_and_non_string_event_names_are_refused(served: tuple[SocketIOServer, WebSocketServer]) -> None:
    sio, server = served
    errors: list[str] = []
    done = trio.Event()

    @sio.on("try")
    async def attempt(socket: Socket) -> None:
        for event in ("connect", "disconnect", "connect_error", 7):
            with pytest.raises(ValueError) as info:
                await socket.emit(event)  # type: ignore[arg-type]
            errors.append(str(info.value))
        with pytest.raises(ValueError, match="'disconnecting' is reserved"):
            await socket.call("disconnecting")
        await socket.emit("allowed")
        done.set()

    with trio.fail_after(10):
        async with open_raw(server.port) as ws:
            await ws.get_message()
            await ws.send_message("40")
            await ws.get_message()
            await ws.send_message('42["try"]')
            assert await ws.get_message() == '42["allowed"]'  # nothing reserved went out before it
            await done.wait()
    assert errors == [
        "'connect' is reserved by Socket.IO clients and cannot be emitted",
        "'disconnect' is reserved by Socket.IO clients and cannot be emitted",
        "'connect_error' is reserved by Socket.IO clients and cannot be emitted",
        "an event name is a string, not 7",
    ]
