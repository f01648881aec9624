"""Socket.IO clients on an App (trio_ws.app.socketio): the official client in Node, python-socketio, raw frames."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
from support.node_ws import NodeWs
from support.rawhttp import Answer, build_request, http
from support.sio import PEER_TIMEOUT, SIO_APP_CLIENT, SIO_CLIENT, open_raw, run_node, run_python_peer
from support.sio_app import next_packet, serving, task_count

from trio_ws import ConnectionClosed, ConnectionRejected, WebSocketServer, open_websocket_url
from trio_ws.app import App, EventConnection, EventError, Namespace
from trio_ws.app.client import EventClient
from trio_ws.app.socketio import SocketIOConnection
from trio_ws.hub import HistoryPolicy, Hub
from trio_ws.socketio import EngineConfig, Handshake, decode_packet

QUIET = {"reconnect": False}


def engine_error(answer: Answer) -> tuple[int, int]:
    assert answer.headers["content-type"] == "application/json"
    return answer.status, json.loads(answer.body)["code"]


def fast_app() -> App:
    """An App pinging every 0.5 s: the clients answer pings between their packets."""
    app = App()
    app.enable_socketio(config=EngineConfig(ping_interval=0.5, ping_timeout=2.0))
    return app


# The scenario the standalone server's tests use, served by App handlers ------------------------


def full_scenario_app() -> tuple[App, dict[str, Any], trio.Event]:
    app = fast_app()
    seen: dict[str, Any] = {}
    disconnected = trio.Event()

    @app.on("connect")
    async def connect(conn: EventConnection, auth: Any) -> None:
        seen["auth"] = auth
        seen["sid"] = conn.id
        seen["wire_format"] = conn.wire_format

    @app.on("echo")
    async def echo(conn: EventConnection, data: list[Any]) -> tuple[Any, ...]:
        return tuple(data)  # several arguments back

    @app.on("reverse")
    async def reverse(conn: EventConnection, data: list[Any]) -> tuple[Any, ...]:
        raw, extra = data
        seen["received_bytes"] = raw
        return bytes(reversed(raw)), extra

    @app.on("nothing")
    async def nothing(conn: EventConnection, data: Any) -> None:
        seen["nothing"] = data

    @app.on("no-ack")
    async def no_ack(conn: EventConnection, data: str) -> str:
        seen["no-ack"] = data
        return "nobody asked"

    @app.on("trigger")
    async def trigger(conn: EventConnection, data: list[int]) -> None:
        answer = await conn.call("add", tuple(data), timeout=5)
        await conn.emit("bytes", ("payload", b"\x00\xff", {"inner": [1, b"\x10\x20"]}))
        await conn.emit("done", answer)

    @app.on("disconnect")
    async def on_disconnect(conn: EventConnection) -> None:
        disconnected.set()

    return app, seen, disconnected


FULL_SCENARIO_RECORDS = [
    {"event": "echo-ack", "echoed": ["hi", {"n": 1}, [True, None]]},
    {"event": "reverse-ack", "hex": "fa030201", "rest": {"keep": "text"}},
    {"event": "nothing-ack", "count": 0},
    {"event": "bytes", "label": "payload", "hex": "00ff", "nested": "1020"},
    {"event": "done", "value": [5, "sum"]},
]


async def check_full_scenario(
    records: list[dict[str, Any]], seen: dict[str, Any], disconnected: trio.Event, final: str = "websocket"
) -> None:
    # Both client scripts end with the transport they used.
    assert [r["name"] for r in records if r["event"] == "transport"] == [final]
    records = [r for r in records if r["event"] != "transport"]
    assert records == [{"event": "connect", "id": seen["sid"]}, *FULL_SCENARIO_RECORDS]
    assert seen["auth"] == {"token": "abc"}
    assert seen["wire_format"] == "socketio"
    assert seen["received_bytes"] == b"\x01\x02\x03\xfa"
    assert seen["nothing"] is None
    assert seen["no-ack"] == "fire and forget"
    with trio.fail_after(5):
        await disconnected.wait()


#: The official client's transports: WebSocket only, and its default (long-polling, then the upgrade).
TRANSPORTS = pytest.mark.parametrize("transports", ["websocket", "default"])


@pytest.mark.parametrize(
    ("transports", "final"), [("websocket", "websocket"), ("default", "websocket"), ("polling", "polling")]
)
async def test_official_client_auth_events_acks_and_binary_both_ways(
    node_socketio: NodeWs, transports: str, final: str
) -> None:
    app, seen, disconnected = full_scenario_app()
    async with serving(app) as server:
        records = await run_node(node_socketio, SIO_CLIENT, f"http://127.0.0.1:{server.port}/", "full", transports)
        await check_full_scenario(records, seen, disconnected, final)
    assert not app._engine_links  # every Engine.IO session ended with its client


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_python_socketio_client_auth_events_acks_and_binary_both_ways(
    python_socketio: None, transport: str
) -> None:
    app, seen, disconnected = full_scenario_app()
    async with serving(app) as server:
        records = await run_python_peer(server.port, transport)
        await check_full_scenario(records, seen, disconnected, transport)


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_python_socketio_clients_namespaces_refusal_rooms_exclusion_and_reconnect(
    python_socketio: None, transport: str
) -> None:
    app = fast_app()
    sids: list[str] = []

    @app.on("connect")
    async def connect(conn: EventConnection, auth: Any) -> None:
        conn.session["name"] = auth.get("name") if isinstance(auth, dict) else None
        sids.append(conn.id)

    @app.on("connect", namespace="/private")
    async def private(conn: EventConnection, auth: Any) -> None:
        raise EventError("Unauthorized", "Not authorized")

    @app.on("join")
    async def join(conn: EventConnection, room: str) -> list[str]:
        await conn.join_room(room)
        return sorted(conn.rooms())

    @app.on("say")
    async def say(conn: EventConnection, text: str) -> str:
        await app.emit("said", {"text": text, "by": conn.session["name"]}, to="tea", exclude=conn.id)
        return "ok"

    @app.on("where", namespace="/chat")
    async def where(conn: EventConnection, data: Any) -> str:
        return "/chat"

    @app.on("whoami")
    async def whoami(conn: EventConnection, data: Any) -> list[Any]:
        return [conn.session["name"], sorted(conn.rooms())]

    async with serving(app) as server:
        records = await run_python_peer(server.port, transport, "app")
        with trio.fail_after(5):
            await links_gone(app)  # every session ended with its client
    reconnected = [{"event": "reconnected", "new_sid": True, "whoami": ["b", []]}] if transport == "websocket" else []
    assert len(sids) == 2 + len(reconnected) and len(set(sids)) == len(sids)  # /private refused before its CONNECT
    assert records == [
        {
            "event": "refused",
            "error": "One or more namespaces failed to connect: /private",
            "data": [{"message": "Not authorized", "data": {"type": "Unauthorized"}}],
        },
        {"event": "joined", "a": ["tea"], "b": ["tea"]},
        {"event": "say-ack", "answer": "ok"},
        {"event": "say-ack", "answer": "ok"},
        {"event": "where", "answer": "/chat"},
        {"event": "heard", "a": [{"text": "from b", "by": "b"}], "b": [{"text": "from a", "by": "a"}]},
        *reconnected,
    ]


@pytest.mark.parametrize("transport", ["websocket", "upgrade", "polling"])
async def test_python_socketio_client_reconnects_after_the_server_ends_its_session_but_not_after_disconnect(
    python_socketio: None, transport: str
) -> None:
    app = fast_app()
    send_ready, receive_ready = trio.open_memory_channel[EventConnection](2)

    @app.on("ready")
    async def ready(conn: EventConnection, data: Any) -> None:
        send_ready.send_nowait(conn)

    async def end_sessions() -> None:
        first = await receive_ready.receive()
        # What the hub's overflow policy does to a member that does not keep up.
        await first.websocket.link.aclose(1008, "outbound queue overflow")
        second = await receive_ready.receive()
        assert isinstance(second, SocketIOConnection)
        await second.disconnect()  # deliberate: a DISCONNECT packet first

    async with serving(app) as server, trio.open_nursery() as nursery:
        nursery.start_soon(end_sessions)
        records = await run_python_peer(server.port, transport, "serverend")
        with trio.fail_after(5):
            await links_gone(app)
        nursery.cancel_scope.cancel()
    if transport == "polling":
        # Only a close packet can tell a polling client, and python-socketio's client
        # takes it as a deliberate end (so it does with the reference server).
        assert records == [
            {"event": "connect", "transport": "polling"},
            {"event": "disconnect", "reason": "server disconnect"},
            {"event": "ended"},
        ]
        return
    assert records == [
        {"event": "connect", "transport": "websocket"},
        {"event": "disconnect", "reason": "transport error"},  # python-engineio's name for a dropped transport
        {"event": "connect", "transport": "websocket"},
        {"event": "disconnect", "reason": "server disconnect"},  # its name for a DISCONNECT packet
        {"event": "ended"},
    ]
    assert receive_ready.statistics().current_buffer_used == 0  # no third session


@TRANSPORTS
async def test_official_client_namespaces_refused_connect_and_unknown_namespace(
    node_socketio: NodeWs, transports: str
) -> None:
    app = fast_app()

    @app.on("connect", namespace="/private")
    async def private(conn: EventConnection, auth: Any) -> None:
        if auth != {"token": "right"}:
            raise EventError("Unauthorized", "Not authorized")

    class Chat(Namespace):
        namespace = "/chat"

        async def on_where(self, conn: EventConnection, data: Any) -> str:
            return self.namespace

    app.add_namespace(Chat)
    async with serving(app) as server:
        records = await run_node(
            node_socketio, SIO_CLIENT, f"http://127.0.0.1:{server.port}/", "namespaces", transports
        )
    assert sorted(records, key=lambda r: r["event"]) == [
        {"event": "chat-where", "answer": ["/chat"], "same_manager": True},
        {"event": "refused", "message": "Not authorized", "data": {"type": "Unauthorized"}},
        {"event": "unknown", "message": "Invalid namespace"},
    ]


# Both kinds of client in one room ------------------------------------------------------------


@TRANSPORTS
async def test_a_room_holds_a_socketio_client_and_an_event_client(node_socketio: NodeWs, transports: str) -> None:
    app = fast_app()
    joined = {"socketio": trio.Event(), "envelope": trio.Event()}

    @app.on("join")
    async def join(conn: EventConnection, data: dict[str, str]) -> list[str]:
        await conn.join_room(data["room"])
        joined[conn.wire_format or "envelope"].set()
        return sorted(conn.rooms())

    @app.on("say")
    async def say(conn: EventConnection, text: str) -> str:
        await app.emit("said", {"text": text, "by": conn.wire_format or "envelope"}, to="tea", exclude=conn.id)
        return "ok"

    envelope_said: list[Any] = []
    envelope_heard = trio.Event()
    envelope_bye = trio.Event()
    async with serving(app) as server, trio.open_nursery() as nursery:
        node_records: list[dict[str, Any]] = []

        async def node() -> None:
            url = f"http://127.0.0.1:{server.port}/"
            node_records.extend(await run_node(node_socketio, SIO_APP_CLIENT, url, "room", transports))

        nursery.start_soon(node)
        with trio.fail_after(PEER_TIMEOUT):
            await joined["socketio"].wait()
        client = EventClient(f"ws://127.0.0.1:{server.port}/ws", **QUIET)

        @client.on("said")
        @client.on("bin")
        async def heard(data: Any) -> None:
            envelope_said.append(data)
            envelope_heard.set()

        @client.on("bye")
        async def bye(data: Any) -> None:
            envelope_bye.set()

        async with client:
            assert await client.call("join", {"room": "tea"}) == ["tea"]
            members = app.hub.local_room_members("tea")
            assert len(members) == 2
            # The envelope client says: only the Socket.IO client hears it; it answers,
            # and only the envelope client hears that.
            assert await client.call("say", "from envelope") == "ok"
            with trio.fail_after(10):
                await envelope_heard.wait()
            assert envelope_said == [{"text": "from node", "by": "socketio"}]
            # Bytes reach Socket.IO clients only (the envelope is JSON).
            await app.emit("bin", (b"\x01\x02", "label"), to="tea")
            await app.emit("bye", "done", to="tea")
            with trio.fail_after(10):
                await envelope_bye.wait()
            assert envelope_said == [{"text": "from node", "by": "socketio"}]
    assert [r for r in node_records if r["event"] != "joined"] == [
        {"event": "said", "data": {"text": "from envelope", "by": "envelope"}},
        {"event": "say-ack", "answer": ["ok"]},
        {"event": "bin", "hex": "0102", "label": "label"},
        {"event": "bye", "data": "done"},
    ]
    assert node_records[0]["event"] == "joined" and node_records[0]["rooms"] == [["tea"]]


@TRANSPORTS
async def test_server_calls_acl_and_errors_answer_a_socketio_client(node_socketio: NodeWs, transports: str) -> None:
    app = fast_app()

    class Main(Namespace):
        allowed_events = ("ask", "fail")

        async def on_ask(self, conn: EventConnection, text: str) -> Any:
            return await conn.call("question", text, timeout=5)

        async def on_secret(self, conn: EventConnection, data: Any) -> str:
            return "leaked"

        async def on_fail(self, conn: EventConnection, data: Any) -> None:
            raise RuntimeError("boom")

    app.add_namespace(Main)
    async with serving(app) as server:
        records = await run_node(node_socketio, SIO_APP_CLIENT, f"http://127.0.0.1:{server.port}/", "calls", transports)
    assert records == [
        {"event": "ask-ack", "answer": [["WHY?", 42]]},
        {
            "event": "secret-ack",
            "answer": [{"error": {"type": "Forbidden", "message": "event 'secret' is not allowed"}}],
        },
        {"event": "fail-ack", "answer": [{"error": {"type": "InternalError", "message": "the handler failed"}}]},
    ]


@TRANSPORTS
async def test_disconnect_from_the_server_stops_the_official_client_reconnecting(
    node_socketio: NodeWs, transports: str
) -> None:
    app = fast_app()
    gone = trio.Event()

    @app.on("kick-me")
    async def kick(conn: EventConnection, data: Any) -> None:
        await conn.disconnect()

    @app.on("disconnect")
    async def disconnected(conn: EventConnection) -> None:
        gone.set()

    async with serving(app) as server:
        records = await run_node(
            node_socketio, SIO_APP_CLIENT, f"http://127.0.0.1:{server.port}/", "kicked", transports
        )
        with trio.fail_after(5):
            await gone.wait()
    assert records == [{"event": "disconnect", "reason": "io server disconnect", "active": False}]


@TRANSPORTS
async def test_official_client_sends_arraybuffers_views_and_buffers_and_receives_bytes(
    node_socketio: NodeWs, transports: str
) -> None:
    app = fast_app()
    received: list[Any] = []

    @app.on("reverse")
    async def reverse(conn: EventConnection, data: bytes) -> bytes:
        received.append(data)
        return bytes(reversed(data))

    @app.on("send-blob")
    async def send_blob(conn: EventConnection, data: Any) -> None:
        await conn.emit("blob", ("label", b"\x00\xff\x10"))

    async with serving(app) as server:
        url = f"http://127.0.0.1:{server.port}/"
        records = await run_node(node_socketio, SIO_APP_CLIENT, url, "binary", transports)
    assert received == [b"\x01\x02\x03\xfa", b"\x02\x03", b"\x09\x08"]
    assert records == [
        {"event": "reverse-ack", "sent": "ArrayBuffer", "hex": "fa030201", "kind": "Buffer"},
        {"event": "reverse-ack", "sent": "Uint8Array view", "hex": "0302", "kind": "Buffer"},
        {"event": "reverse-ack", "sent": "Buffer", "hex": "0809", "kind": "Buffer"},
        {"event": "blob", "label": "label", "hex": "00ff10", "kind": "Buffer"},
    ]


@TRANSPORTS
async def test_official_client_reconnects_after_a_dropped_transport_to_a_fresh_session(
    node_socketio: NodeWs, transports: str
) -> None:
    app = fast_app()  # no connection-state recovery: a new sid, no rooms, nothing replayed
    conns: list[EventConnection] = []
    joined, got_first, gone = trio.Event(), trio.Event(), trio.Event()

    @app.on("join")
    async def join(conn: EventConnection, room: str) -> str:
        await conn.join_room(room)
        conn.session["name"] = "node"
        conns.append(conn)
        return "ok"

    @app.on("ready")
    async def ready(conn: EventConnection, data: Any) -> None:
        joined.set()

    @app.on("got")
    async def got(conn: EventConnection, data: Any) -> None:
        got_first.set()

    @app.on("whoami")
    async def whoami(conn: EventConnection, data: Any) -> list[Any]:
        assert isinstance(conn, SocketIOConnection)
        return [conn.id, conn.session.get("name"), sorted(conn.rooms()), conn.recovered]

    @app.on("again")
    async def again(conn: EventConnection, data: Any) -> None:
        await app.emit("news", "last", to=conn.id)

    @app.on("disconnect")
    async def disconnected(conn: EventConnection) -> None:
        gone.set()

    async with serving(app) as server, trio.open_nursery() as nursery:
        records: list[dict[str, Any]] = []

        async def node() -> None:
            url = f"http://127.0.0.1:{server.port}/"
            records.extend(await run_node(node_socketio, SIO_APP_CLIENT, url, "recover", transports))

        nursery.start_soon(node)
        with trio.fail_after(PEER_TIMEOUT):
            await joined.wait()
            await app.emit("news", 1, to="tea")
            await got_first.wait()
            await conns[0].websocket.link.aclose(1011, "dropped")  # no Engine.IO close packet
            await gone.wait()
            await app.emit("news", "missed", to="tea")  # nobody is in the room now
    first, second = records[0]["id"], records[4]["id"]
    assert first != second
    assert records == [
        {"event": "connect", "id": first, "recovered": False, "connects": 1},
        {"event": "joined", "answer": ["ok"]},
        {"event": "news", "n": 1, "offset_is_string": False},
        {"event": "disconnect", "reason": "transport close"},
        {"event": "connect", "id": second, "recovered": False, "connects": 2},
        {"event": "whoami", "answer": [[second, None, [], False]]},
        {"event": "news", "n": "last", "offset_is_string": False},
        {"event": "disconnect", "reason": "io client disconnect"},
    ]


# Raw frames ------------------------------------------------------------------------------------


async def test_raw_frames_close_room_and_one_encoding_per_wire_format() -> None:
    app = fast_app()

    @app.on("join")
    async def join(conn: EventConnection, room: str) -> None:
        await conn.join_room(room)

    async with serving(app) as server:
        url = f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket"
        with trio.fail_after(10):
            async with open_websocket_url(url) as ws:
                handshake = Handshake.from_packet(decode_packet(await next_event(ws)))
                assert handshake.upgrades == ()
                await ws.send_message('40{"token":1}')
                connected = json.loads((await next_event(ws))[2:])
                assert set(connected) == {"sid"}
                await ws.send_message('421["join","tea"]')
                assert await next_event(ws) == "431[]"
                report = await app.emit("news", {"n": 1}, to="tea")
                assert report.queued == 1
                assert await next_event(ws) == '42["news",{"n":1}]'
                await app.emit("blob", b"\x00", to=connected["sid"])
                assert await next_event(ws) == '451-["blob",{"_placeholder":true,"num":0}]'
                assert await next_packet(ws) == b"\x00"
                await app.hub.close_room("tea")
                assert app.hub.local_room_members("tea") == frozenset()
                report = await app.emit("news", {"n": 2}, to="tea")
                assert report.queued == 0


async def test_raw_frames_events_before_any_connect_are_ignored() -> None:
    app = fast_app()

    @app.on("echo")
    async def echo(conn: EventConnection, data: Any) -> Any:
        return data

    async with serving(app) as server:
        url = f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket"
        with trio.fail_after(10):
            async with open_websocket_url(url) as ws:
                assert (await next_event(ws)).startswith("0{")
                await ws.send_message('421["echo","early"]')
                await ws.send_message('42["echo","early"]')
                await ws.send_message("40")
                assert (await next_event(ws)).startswith('40{"sid":')
                await ws.send_message('422["echo","in time"]')
                assert await next_event(ws) == '432["in time"]'


async def test_raw_frames_bad_requests_get_engineio_errors() -> None:
    app = fast_app()
    async with serving(app) as server:
        for query, code in (
            ("EIO=3&transport=websocket", 5),
            ("transport=websocket", 5),
            ("EIO=4&transport=carrier-pigeon", 0),
            ("EIO=4&transport=polling", 0),  # polling asked for in a WebSocket handshake
            ("EIO=4&transport=websocket&sid=unknown", 1),
        ):
            with pytest.raises(ConnectionRejected) as caught:
                async with open_raw(server.port, query):
                    pass  # pragma: no cover - refused
            assert caught.value.status_code == 400
            assert json.loads(caught.value.body)["code"] == code


def test_emitting_a_reserved_event_name_is_refused_with_socketio() -> None:
    app = fast_app()
    with pytest.raises(ValueError, match="reserved"):
        app.event_message("disconnect", None)
    with pytest.raises(ValueError, match="already served"):
        app.enable_socketio()


async def test_raw_frames_refusals_connect_timeout_and_origins() -> None:
    app = App()
    app.enable_socketio(connect_timeout=0.5, origins=["https://ok.example"])

    @app.on("connect")
    async def connect(conn: EventConnection, auth: Any) -> bool:
        return auth == {"ok": True}

    async with serving(app) as server:
        url = f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket"
        with trio.fail_after(10):
            with pytest.raises(ConnectionRejected) as caught:
                async with open_websocket_url(url, extra_headers=[("Origin", "https://evil.example")]):
                    pass  # pragma: no cover - refused
            assert caught.value.status_code == 403
            async with open_websocket_url(url, extra_headers=[("Origin", "https://ok.example")]) as ws:
                assert (await ws.get_message()).startswith("0{")
                await ws.send_message('40{"ok":false}')
                refused = json.loads((await ws.get_message())[2:])
                assert refused == {"message": "connection refused", "data": {"type": "Refused"}}
                # Refused everywhere: closed once connect_timeout has passed.
                with pytest.raises(ConnectionClosed):
                    while True:
                        assert await ws.get_message() == "2"  # perhaps a ping; no Engine.IO close packet
                assert ws.closed is not None and ws.closed.code == 1000


async def test_raw_frames_a_socketio_client_that_does_not_read_meets_the_hubs_overflow_policy() -> None:
    app = App(hub=Hub(queue_size=4))
    app.enable_socketio()

    @app.on("join")
    async def join(conn: EventConnection, room: str) -> None:
        await conn.join_room(room)

    async with serving(app) as server:
        url = f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket"
        with trio.fail_after(10):
            async with open_websocket_url(url, message_queue_size=1) as ws:
                await ws.get_message()
                await ws.send_message("40")
                await ws.get_message()
                await ws.send_message('421["join","tea"]')
                assert await ws.get_message() == "431[]"
                # No checkpoint between the emits: the member's sender cannot drain its outbox.
                reports = [await app.emit("flood", n, to="tea") for n in range(6)]
                assert [r.queued for r in reports] == [1, 1, 1, 1, 0, 0]
                assert app.hub.stats.overflow_closes == 1
                received: list[str | bytes] = []
                with pytest.raises(ConnectionClosed) as closed:
                    while True:
                        received.append(await ws.get_message())
                assert closed.value.reason.code == 1008
                # As the reference server: no Engine.IO close packet over WebSocket, so
                # python-socketio's client reconnects (it gives up after a "1").
                assert "1" not in received


# Connection-state recovery ----------------------------------------------------------------------


@TRANSPORTS
async def test_official_client_recovers_its_sid_rooms_session_and_missed_events(
    node_socketio: NodeWs, transports: str
) -> None:
    app = App()
    app.enable_socketio(config=EngineConfig(ping_interval=0.5, ping_timeout=2.0), max_disconnection_duration=30)
    conns: list[EventConnection] = []
    joined = trio.Event()
    got_first = trio.Event()
    gone = trio.Event()

    @app.on("join")
    async def join(conn: EventConnection, room: str) -> str:
        await conn.join_room(room)
        conn.session["name"] = "node"
        conns.append(conn)
        return "ok"

    @app.on("ready")
    async def ready(conn: EventConnection, data: Any) -> None:
        joined.set()

    @app.on("got")
    async def got(conn: EventConnection, data: Any) -> None:
        got_first.set()

    @app.on("whoami")
    async def whoami(conn: EventConnection, data: Any) -> list[Any]:
        assert isinstance(conn, SocketIOConnection)
        return [conn.id, conn.session.get("name"), sorted(conn.rooms()), conn.recovered]

    @app.on("again")
    async def again(conn: EventConnection, data: Any) -> None:
        await app.emit("news", "last", to="tea")

    @app.on("disconnect")
    async def disconnected(conn: EventConnection) -> None:
        gone.set()

    async with serving(app) as server, trio.open_nursery() as nursery:
        records: list[dict[str, Any]] = []

        async def node() -> None:
            records.extend(
                await run_node(node_socketio, SIO_APP_CLIENT, f"http://127.0.0.1:{server.port}/", "recover", transports)
            )

        nursery.start_soon(node)
        with trio.fail_after(PEER_TIMEOUT):
            await joined.wait()
            await app.emit("news", 1, to="tea")
            await got_first.wait()
            old = conns[0]
            # The transport drops (no Engine.IO close packet): the client reconnects.
            await old.websocket.link.aclose(1011, "dropped")
            await gone.wait()
            # Missed while away: two room events and one to the connection itself.
            await app.emit("news", 2, to="tea")
            await app.emit("news", 3, to="tea")
            await app.emit("news", "direct", to=old.id)
    sid = records[0]["id"]
    assert records == [
        {"event": "connect", "id": sid, "recovered": False, "connects": 1},
        {"event": "joined", "answer": ["ok"]},
        {"event": "news", "n": 1, "offset_is_string": True},
        {"event": "disconnect", "reason": "transport close"},
        {"event": "connect", "id": sid, "recovered": True, "connects": 2},
        {"event": "news", "n": 2, "offset_is_string": True},
        {"event": "news", "n": 3, "offset_is_string": True},
        {"event": "news", "n": "direct", "offset_is_string": True},
        {"event": "whoami", "answer": [[sid, "node", ["tea"], True]]},
        {"event": "news", "n": "last", "offset_is_string": True},
        {"event": "disconnect", "reason": "io client disconnect"},
    ]
    assert sid == old.id


@asynccontextmanager
async def raw_session(server: WebSocketServer, auth: Any = None) -> AsyncIterator[tuple[Any, dict[str, Any]]]:
    """A raw Engine.IO WebSocket that CONNECTed to ``/`` with ``auth``: the socket and the CONNECT answer."""
    async with open_websocket_url(f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket") as ws:
        assert (await ws.get_message()).startswith("0{")
        await ws.send_message("40" + ("" if auth is None else json.dumps(auth)))
        answer = await next_event(ws)
        assert answer.startswith("40")
        yield ws, json.loads(answer[2:])


async def next_event(ws: Any) -> str:
    """The next text message that is not a ping (answered)."""
    message = await next_packet(ws)
    assert isinstance(message, str), message
    return message


async def dropped_member(app: App, server: WebSocketServer) -> tuple[dict[str, Any], str]:
    """A raw client joins "tea", receives one event, then its transport drops; returns its CONNECT answer and offset."""
    async with raw_session(server) as (ws, answer):
        await ws.send_message('421["join","tea"]')
        assert await next_event(ws) == "431[]"
        await app.emit("news", 1, to="tea")
        offset = json.loads((await next_event(ws))[2:])[2]
        assert isinstance(offset, str)
        await ws.aclose(1011)
    assert app._recovery is not None
    while app._recovery.parked == 0:  # noqa: ASYNC110 - parked once the server notices the drop
        await trio.sleep(0.01)
    return answer, offset


async def test_raw_frames_recovery_needs_a_known_pid_a_valid_offset_and_no_goodbye() -> None:
    app = App()
    app.enable_socketio(max_disconnection_duration=30, recovery_history=HistoryPolicy(max_messages=3))
    kicked = trio.Event()

    @app.on("join")
    async def join(conn: EventConnection, room: str) -> None:
        await conn.join_room(room)

    @app.on("kick-me")
    async def kick(conn: EventConnection, data: Any) -> None:
        conn.session["kicked"] = True
        await conn.disconnect()

    @app.on("disconnect")
    async def disconnected(conn: EventConnection) -> None:
        if conn.session.get("kicked"):
            kicked.set()

    async with serving(app) as server:
        with trio.fail_after(10):
            answer, offset = await dropped_member(app, server)
            sid, pid = answer["sid"], answer["pid"]
            # An unknown pid: a fresh session.
            async with raw_session(server, {"pid": "nobody", "offset": offset}) as (ws, fresh):
                assert fresh["sid"] != sid and fresh["pid"] != "nobody"
                await ws.send_message("1")  # Engine.IO close: a goodbye, nothing parked
            # An offset that is not one: the sid comes back, the events do not (a pid the client does not know).
            async with raw_session(server, {"pid": pid, "offset": "not an offset"}) as (ws, back):
                assert back["sid"] == sid and back["pid"] != pid
                await ws.send_message("1")
            while app._recovery is not None and app._recovery.parked:  # noqa: ASYNC110 - nothing may stay parked
                await trio.sleep(0.01)

            # An offset the log has trimmed (max_messages=3): not recovered either.
            answer, offset = await dropped_member(app, server)
            for n in range(5):
                await app.emit("news", n, to="tea")
            async with raw_session(server, {"pid": answer["pid"], "offset": offset}) as (ws, back):
                assert back["sid"] == answer["sid"] and back["pid"] != answer["pid"]

            # No offset (the client received no event since it connected): from its connection on.
            async with raw_session(server) as (ws, answer):
                await ws.send_message('421["join","tea"]')
                assert await next_event(ws) == "431[]"
                await ws.aclose(1011)
            while app._recovery.parked == 0:  # noqa: ASYNC110 - parked once the server notices the drop
                await trio.sleep(0.01)
            await app.emit("news", "while away", to="tea")
            async with raw_session(server, {"pid": answer["pid"]}) as (ws, back):
                assert back == {"sid": answer["sid"], "pid": answer["pid"]}
                assert json.loads((await next_event(ws))[2:])[:2] == ["news", "while away"]

            # A valid one: recovered, the missed events follow the CONNECT answer.
            answer, offset = await dropped_member(app, server)
            await app.emit("news", "missed", to="tea")
            async with raw_session(server, {"pid": answer["pid"], "offset": offset}) as (ws, back):
                assert back == {"sid": answer["sid"], "pid": answer["pid"]}
                assert json.loads((await next_event(ws))[2:])[:2] == ["news", "missed"]
                # Disconnected by the server: a goodbye, nothing parked.
                await ws.send_message('42["kick-me"]')
                with pytest.raises(ConnectionClosed):
                    while True:
                        await ws.get_message()
            await kicked.wait()
            assert app._recovery.take(answer["pid"], trio.current_time()) is None


def test_recovery_is_refused_with_a_backend_that_cannot_park_states() -> None:
    class Backend:
        process_id = "P"

    app = App(hub=Hub(backend=Backend()))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="parks states and keeps streams"):
        app.enable_socketio(max_disconnection_duration=10)
    assert app.socketio is None


# Bad input and the less travelled paths, with raw frames ---------------------------------------


@pytest.mark.parametrize(
    ("frame", "why"),
    [
        ("4" + "x" * 2_000, "exceeds max_payload"),
        ("9", "unknown Engine.IO packet type"),
        ("4{", "unknown Socket.IO packet type"),
        ('44{"message":"no"}', "CONNECT_ERROR"),
        ("42abc[]", "invalid ack id"),
        ("43[]", "needs the id of the event it answers"),
        ('42["x",', "not valid JSON"),
        ('42{"event":"x"}', "expected a non-empty JSON array"),
        ("42[1]", "the event name must be a string"),
        ('42/a\x01b,["x"]', "invalid namespace"),
        (['451-["x",{"_placeholder":true,"num":0}]', "4"], "expected binary attachment 1 of 1"),
        ('45999-["x"]', "more than max_attachments=256"),
        (b"\x00\x01", "unexpected binary message"),
    ],
)
async def test_raw_frames_bad_input_closes_the_session_with_1008(frame: str | bytes | list[str], why: str) -> None:
    app = App()
    app.enable_socketio(config=EngineConfig(max_payload=1_000))

    async with serving(app) as server:
        with trio.fail_after(10):
            async with raw_session(server) as (ws, _):
                for message in frame if isinstance(frame, list) else [frame]:
                    await ws.send_message(message)
                with pytest.raises(ConnectionClosed) as closed:
                    while True:
                        await ws.get_message()
                assert closed.value.reason.code == 1008
                assert why in (closed.value.reason.reason or "")


async def test_raw_frames_a_client_that_misses_its_pong_is_closed_and_leaves_no_task(
    mock_clock: trio.testing.MockClock,
) -> None:
    app = App()
    app.enable_socketio(config=EngineConfig(ping_interval=25, ping_timeout=20))
    async with serving(app) as server:
        await trio.testing.wait_all_tasks_blocked()
        idle = task_count()
        async with raw_session(server) as (ws, _):
            await trio.testing.wait_all_tasks_blocked()
            mock_clock.jump(25)
            assert await ws.get_message() == "2"  # never answered
            await trio.testing.wait_all_tasks_blocked()
            mock_clock.jump(20)
            with pytest.raises(ConnectionClosed) as closed:
                await ws.get_message()
            assert closed.value.reason.code == 1000
            assert closed.value.reason.reason == "no pong within ping_timeout=20 s"
        await trio.testing.wait_all_tasks_blocked()
        assert not app._engine_links
        assert task_count() == idle


async def test_raw_frames_namespace_broadcast_leave_namespace_and_answers_json_cannot_encode() -> None:
    app = App()
    app.enable_socketio(max_disconnection_duration=30)
    seen: dict[str, Any] = {}

    @app.on("bad-answer")
    async def bad_answer(conn: EventConnection, data: Any) -> Any:
        return {1, 2}  # a set: JSON cannot encode it

    @app.on("me")
    async def me(conn: EventConnection, data: Any) -> None:
        with pytest.raises(TypeError, match="envelopes"):
            await conn.send_envelope("{}")
        await conn.emit("to-me", "hello")

    @app.on("leave")
    async def leave(conn: EventConnection, data: Any) -> None:
        await conn.leave_namespace("/")

    @app.on("disconnect")
    async def disconnected(conn: EventConnection) -> None:
        seen["left"] = True

    async with serving(app) as server:
        with trio.fail_after(10):
            async with raw_session(server) as (ws, _):
                report = await app.emit("all", {"n": 1})  # every connection of the namespace
                assert report.queued == 1
                args = json.loads((await next_event(ws))[2:])
                assert args[:2] == ["all", {"n": 1}] and isinstance(args[2], str)  # with its offset
                await ws.send_message('421["bad-answer"]')
                assert json.loads((await next_event(ws))[3:]) == [
                    {"error": {"type": "InternalError", "message": "the answer could not be encoded"}}
                ]
                await ws.send_message('42["me"]')
                args = json.loads((await next_event(ws))[2:])
                assert args[:2] == ["to-me", "hello"] and isinstance(args[2], str)
                await ws.send_message('42["leave"]')
                assert await next_event(ws) == "41"  # DISCONNECT of "/"
                assert seen == {"left": True}


def test_socketio_settings_are_checked() -> None:
    app = App()
    with pytest.raises(ValueError, match="must start with '/'"):
        app.enable_socketio("socket.io")
    with pytest.raises(ValueError, match="connect_timeout"):
        app.enable_socketio(connect_timeout=0)
    with pytest.raises(ValueError, match="max_disconnection_duration must be > 0"):
        app.enable_socketio(max_disconnection_duration=0)
    assert app.socketio is None and app._recovery is None  # nothing half-enabled
    app.enable_socketio()


async def test_a_room_with_history_gives_envelope_clients_their_position_and_socketio_clients_their_event() -> None:
    app = App(hub=Hub(history=HistoryPolicy()))
    app.enable_socketio()

    @app.on("join")
    async def join(conn: EventConnection, room: str) -> None:
        await conn.join_room(room)

    async with serving(app) as server:
        with trio.fail_after(10):
            async with (
                raw_session(server) as (sio, _),
                open_websocket_url(f"ws://127.0.0.1:{server.port}/ws") as envelope,
            ):
                await sio.send_message('421["join","tea"]')
                assert await next_event(sio) == "431[]"
                await envelope.send_message(json.dumps({"type": "event", "event": "join", "data": "tea", "id": 1}))
                joined = [json.loads(await envelope.get_message()) for _ in range(2)]
                assert {message["type"] for message in joined} == {"joined", "ack"}
                report = await app.emit("news", {"n": 1}, to="tea")
                assert report.queued == 2 and report.position is not None
                assert await next_event(sio) == '42["news",{"n":1}]'
                event = json.loads(await envelope.get_message())
                assert (event["data"], event["room"], event["offset"]) == ({"n": 1}, "tea", report.position.offset)
                # Bytes: the Socket.IO client only, still at the next offset of the room.
                report = await app.emit("blob", b"\x01", to="tea")
                assert report.queued == 1 and report.position is not None and report.position.offset == 2
                assert await next_event(sio) == '451-["blob",{"_placeholder":true,"num":0}]'


# Long-polling and the upgrade on the App's path, in raw HTTP ------------------------------------

POLLING = "/socket.io/?EIO=4&transport=polling"


def polling_app(**options: Any) -> App:
    app = App()
    # Pings far apart: on a loaded machine a ping must not land in a poll a test reads.
    app.enable_socketio(config=EngineConfig(ping_interval=30, ping_timeout=30, max_payload=100), **options)
    return app


async def poll_open(port: int, **headers: str) -> str:
    answer = await http(port, "GET", POLLING, headers=headers)
    assert answer.status == 200, answer
    return Handshake.from_packet(decode_packet(answer.text)).sid


async def poll(port: int, sid: str) -> Answer:
    return await http(port, "GET", f"{POLLING}&sid={sid}")


async def post(port: int, sid: str, body: bytes) -> Answer:
    return await http(port, "POST", f"{POLLING}&sid={sid}", body=body)


async def links_gone(app: App) -> None:
    while app._engine_links:  # noqa: ASYNC110 - a real peer's timing, observed through the sessions
        await trio.sleep(0.01)


async def test_long_polling_then_the_upgrade_serve_the_apps_handlers_and_room_emits() -> None:
    app = polling_app()
    reasons: list[str] = []

    @app.on("join")
    async def join(conn: EventConnection, room: str) -> str:
        await conn.join_room(room)
        return "ok"

    @app.on("disconnect")
    async def gone(conn: EventConnection) -> None:
        reasons.append("gone")

    async with serving(app) as server:
        with trio.fail_after(10):
            sid = await poll_open(server.port)
            assert (await post(server.port, sid, b"40")).text == "ok"
            connected = (await poll(server.port, sid)).text
            assert connected.startswith('40{"sid":"')
            assert (await post(server.port, sid, b'421["join","tea"]')).text == "ok"
            assert (await poll(server.port, sid)).text == '431["ok"]'
            assert (await app.emit("news", 1, to="tea")).queued == 1
            assert (await poll(server.port, sid)).text == '42["news",1]'
            # Two packets in one GET, joined by the record separator.
            await app.emit("news", 2, to="tea")
            await app.emit("news", 3, to="tea")
            assert (await poll(server.port, sid)).text == '42["news",2]\x1e42["news",3]'
            url = f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket&sid={sid}"
            async with open_websocket_url(url) as ws:
                await ws.send_message("2probe")
                assert await ws.get_message() == "3probe"
                assert (await poll(server.port, sid)).text == "6"  # the last GET gets a noop
                await ws.send_message("5")
                await app.emit("news", 4, to="tea")
                assert await ws.get_message() == '42["news",4]'
                await ws.send_message('422["join","tea"]')
                assert await ws.get_message() == '432["ok"]'
                assert engine_error(await poll(server.port, sid)) == (400, 3)  # the session moved
                with pytest.raises(ConnectionRejected) as caught:  # one WebSocket per session
                    async with open_websocket_url(url):
                        pass  # pragma: no cover - refused
                assert caught.value.status_code == 400
                assert json.loads(caught.value.body) == {"code": 3, "message": "Bad request"}
            await links_gone(app)
    assert reasons == ["gone"]


@pytest.mark.parametrize(
    ("method", "target", "status", "code"),
    [
        ("GET", "/socket.io/?transport=polling", 400, 5),
        ("GET", "/socket.io/?EIO=3&transport=polling", 400, 5),
        ("GET", "/socket.io/?EIO=4", 400, 0),
        ("GET", "/socket.io/?EIO=4&transport=abc", 400, 0),
        ("GET", "/socket.io/?EIO=4&transport=websocket", 400, 3),  # not an upgrade
        ("POST", POLLING, 400, 2),
        ("PUT", POLLING, 400, 2),
        ("GET", f"{POLLING}&sid=unknown", 400, 1),
        ("POST", f"{POLLING}&sid=unknown", 400, 1),
    ],
)
async def test_bad_polling_requests_get_the_engineio_error(method: str, target: str, status: int, code: int) -> None:
    app = polling_app()
    async with serving(app) as server:
        with trio.fail_after(10):
            answer = await http(server.port, method, target, body=b"40" if method != "GET" else None)
    assert engine_error(answer) == (status, code)
    assert not app._engine_links


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"abc", 400),  # malformed Engine.IO payload
        (b"9", 400),  # unknown Engine.IO packet type
        (b"40\x1e42[", 400),  # the second packet of the payload is malformed JSON
        (b"4abc", 400),  # malformed Socket.IO packet
        (b"4" + b"x" * 200, 413),  # over max_payload
        (None, 411),  # no length
    ],
)
async def test_a_bad_post_is_refused_and_ends_the_session(body: bytes | None, status: int) -> None:
    app = polling_app()
    async with serving(app) as server:
        with trio.fail_after(10):
            sid = await poll_open(server.port)
            assert (await post(server.port, sid, b"40")).text == "ok"
            answer = await http(server.port, "POST", f"{POLLING}&sid={sid}", body=body)
            assert answer.status == status
            if status == 400:
                assert json.loads(answer.body) == {"code": 3, "message": "Bad request"}
            await links_gone(app)
            assert engine_error(await poll(server.port, sid)) == (400, 1)


async def test_overlapping_gets_end_the_session_and_a_wrong_method_does_not() -> None:
    app = polling_app()
    async with serving(app) as server:
        with trio.fail_after(10):
            sid = await poll_open(server.port)
            assert engine_error(await http(server.port, "PUT", f"{POLLING}&sid={sid}", body=b"")) == (400, 3)
            assert sid in app._engine_links
            async with trio.open_nursery() as nursery:
                first: list[Answer] = []

                async def held() -> None:
                    first.append(await poll(server.port, sid))

                nursery.start_soon(held)
                await trio.testing.wait_all_tasks_blocked()
                assert engine_error(await poll(server.port, sid)) == (400, 3)
            assert first[0].text == "1"  # the waiting GET gets the close packet
            await links_gone(app)


async def test_overlapping_posts_get_400_and_end_the_session() -> None:
    """engine.io-protocol: a second POST while one is active gets 400 and the session is closed."""
    app = polling_app()
    async with serving(app) as server:
        with trio.fail_after(10):
            sid = await poll_open(server.port)
            slow = await trio.open_tcp_stream("127.0.0.1", server.port)
            async with slow:
                # The first POST announces 5 bytes and sends 2: it stays active.
                head = build_request("POST", f"{POLLING}&sid={sid}", headers={"Content-Length": "5"})
                await slow.send_all(head + b"40")
                await trio.testing.wait_all_tasks_blocked()
                assert engine_error(await post(server.port, sid, b"40")) == (400, 3)
                await links_gone(app)
            assert engine_error(await poll(server.port, sid)) == (400, 1)


async def test_cors_on_the_apps_polling_answers_and_refused_origins() -> None:
    app = polling_app(origins=["https://app.example"])
    async with serving(app) as server:
        with trio.fail_after(10):
            preflight = await http(
                server.port,
                "OPTIONS",
                POLLING,
                headers={"Origin": "https://app.example", "Access-Control-Request-Headers": "content-type"},
            )
            assert preflight.status == 204
            assert preflight.headers["access-control-allow-origin"] == "https://app.example"
            assert preflight.headers["access-control-allow-methods"] == "GET, POST, OPTIONS"
            opened = await http(server.port, "GET", POLLING, headers={"Origin": "https://app.example"})
            assert opened.status == 200
            assert opened.headers["access-control-allow-origin"] == "https://app.example"
            assert opened.headers["access-control-allow-credentials"] == "true"
            refused = await http(server.port, "GET", POLLING, headers={"Origin": "https://evil.example"})
            assert engine_error(refused) == (403, 4)
            assert "access-control-allow-origin" not in refused.headers
    assert len(app._engine_links) == 0  # the server's end ended the opened session


APP_ORIGIN = "https://app.example"


@pytest.mark.parametrize("option", ["origins", "cors_allowed_origins"])
async def test_cors_allowed_origins_is_the_allow_list_of_every_request_and_of_the_cors_answers(option: str) -> None:
    app = polling_app(**{option: [APP_ORIGIN]})
    allowed = {"Origin": APP_ORIGIN}
    evil = {"Origin": "https://evil.example"}
    async with serving(app) as server:
        port = server.port
        with trio.fail_after(10):
            # Preflight: 204 with the origin echoed, credentials, the methods and the asked headers.
            preflight = await http(
                port, "OPTIONS", POLLING, headers={**allowed, "Access-Control-Request-Headers": "x-token"}
            )
            assert preflight.status == 204
            assert preflight.headers["access-control-allow-origin"] == APP_ORIGIN
            assert preflight.headers["access-control-allow-credentials"] == "true"
            assert preflight.headers["access-control-allow-methods"] == "GET, POST, OPTIONS"
            assert preflight.headers["access-control-allow-headers"] == "x-token"
            assert engine_error(await http(port, "OPTIONS", POLLING, headers=evil)) == (403, 4)
            # GET and POST of an allowed origin carry the CORS headers, with credentials.
            sid = await poll_open(port, **allowed)
            posted = await http(port, "POST", f"{POLLING}&sid={sid}", body=b"40", headers=allowed)
            assert posted.text == "ok"
            polled = await http(port, "GET", f"{POLLING}&sid={sid}", headers=allowed)
            assert polled.text.startswith('40{"sid":')
            for answer in (posted, polled):
                assert answer.headers["access-control-allow-origin"] == APP_ORIGIN
                assert answer.headers["access-control-allow-credentials"] == "true"
                assert answer.headers["vary"] == "Origin"
            # Another origin, or none (None is not listed): 403 with code 4 and no CORS header,
            # on a new session and on an existing one, which stays open.
            for headers in (evil, {}):
                for method, target, body in (
                    ("GET", POLLING, None),
                    ("GET", f"{POLLING}&sid={sid}", None),
                    ("POST", f"{POLLING}&sid={sid}", b'42["x"]'),
                ):
                    refused = await http(port, method, target, body=body, headers=headers)
                    assert engine_error(refused) == (403, 4), (method, target, headers)
                    assert "access-control-allow-origin" not in refused.headers
            assert list(app._engine_links) == [sid]
            # The WebSocket handshake obeys the same list, with the same answer.
            ws_url = f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket"
            with pytest.raises(ConnectionRejected) as caught:
                async with open_websocket_url(ws_url, extra_headers=list(evil.items())):
                    pass  # pragma: no cover - refused
            assert caught.value.status_code == 403
            assert json.loads(caught.value.body) == {"code": 4, "message": "Forbidden"}
            async with open_websocket_url(ws_url, extra_headers=list(allowed.items())) as ws:
                assert (await ws.get_message()).startswith("0{")


async def test_cors_allowed_origins_none_in_the_list_admits_clients_without_origin_and_star_admits_all() -> None:
    app = polling_app(cors_allowed_origins=[APP_ORIGIN, None])
    async with serving(app) as server:
        with trio.fail_after(10):
            answer = await http(server.port, "GET", POLLING)
            assert answer.status == 200
            assert "access-control-allow-origin" not in answer.headers  # nothing to allow: not a browser
    app = polling_app(cors_allowed_origins="*")
    async with serving(app) as server:
        with trio.fail_after(10):
            answer = await http(server.port, "GET", POLLING, headers={"Origin": "https://any.example"})
    assert answer.status == 200
    assert answer.headers["access-control-allow-origin"] == "https://any.example"
    assert "access-control-allow-credentials" not in answer.headers


def test_cors_allowed_origins_and_origins_must_agree() -> None:
    app = App()
    with pytest.raises(ValueError, match="differ: give one"):
        app.enable_socketio(origins=[APP_ORIGIN], cors_allowed_origins=["https://other.example"])
    with pytest.raises(ValueError, match="differ: give one"):
        app.enable_socketio(origins=[APP_ORIGIN], cors_allowed_origins="*")
    with pytest.raises(TypeError, match="a list of origins or '\\*'"):
        app.enable_socketio(cors_allowed_origins=APP_ORIGIN)
    assert app.socketio is None
    app.enable_socketio(origins=[APP_ORIGIN], cors_allowed_origins=[APP_ORIGIN])
    assert app.socketio is not None and app.socketio.origins == frozenset([APP_ORIGIN])


async def test_an_abandoned_polling_session_ends_at_its_ping_timeout_and_leaves_no_task(
    mock_clock: trio.testing.MockClock,
) -> None:
    app = App()
    app.enable_socketio(config=EngineConfig(ping_interval=25, ping_timeout=20))
    gone: list[str] = []

    @app.on("disconnect")
    async def disconnected(conn: EventConnection) -> None:
        gone.append(conn.id)

    async with serving(app) as server:
        await trio.testing.wait_all_tasks_blocked()
        idle = task_count()
        sid = await poll_open(server.port)
        assert (await post(server.port, sid, b"40")).text == "ok"
        connected = json.loads((await poll(server.port, sid)).text[2:])
        await trio.testing.wait_all_tasks_blocked()
        assert task_count() > idle  # the session's own tasks
        mock_clock.jump(25)  # the ping is due; no GET comes to take it
        await trio.testing.wait_all_tasks_blocked()
        assert sid in app._engine_links and not gone
        mock_clock.jump(20)  # ... and no POST answers it within ping_timeout
        await trio.testing.wait_all_tasks_blocked()
        assert not app._engine_links
        assert gone == [connected["sid"]]
        assert task_count() == idle  # nothing outlived the session
        assert engine_error(await poll(server.port, sid)) == (400, 1)


async def test_a_session_that_connects_no_namespace_ends_at_connect_timeout(
    mock_clock: trio.testing.MockClock,
) -> None:
    app = App()
    app.enable_socketio(connect_timeout=5)  # before the first ping (25 s)
    async with serving(app) as server:
        await trio.testing.wait_all_tasks_blocked()
        idle = task_count()
        sid = await poll_open(server.port)  # long-polling: no CONNECT follows
        url = f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket"
        async with open_websocket_url(url) as ws:  # WebSocket: no CONNECT either
            assert (await ws.get_message()).startswith("0{")
            await trio.testing.wait_all_tasks_blocked()
            mock_clock.jump(4.9)
            await trio.testing.wait_all_tasks_blocked()
            assert len(app._engine_links) == 2
            mock_clock.jump(0.1)
            with pytest.raises(ConnectionClosed) as closed:
                await ws.get_message()  # no Engine.IO close packet over WebSocket
            assert closed.value.reason.reason == "no namespace connected within connect_timeout"
        # Long-polling: the close packet waits for the client's next GET.
        assert (await poll(server.port, sid)).text == "1"
        await trio.testing.wait_all_tasks_blocked()
        assert not app._engine_links
        assert task_count() == idle
        assert engine_error(await poll(server.port, sid)) == (400, 1)


async def test_an_abandoned_upgrade_is_closed_at_upgrade_timeout_and_polling_goes_on(
    mock_clock: trio.testing.MockClock,
) -> None:
    app = App()
    app.enable_socketio(config=EngineConfig(ping_interval=25, ping_timeout=20, upgrade_timeout=10))
    async with serving(app) as server:
        sid = await poll_open(server.port)
        assert (await post(server.port, sid, b"40")).text == "ok"
        connected = json.loads((await poll(server.port, sid)).text[2:])
        await trio.testing.wait_all_tasks_blocked()
        polling_only = task_count()
        url = f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket&sid={sid}"
        async with open_websocket_url(url) as ws:
            await ws.send_message("2probe")
            assert await ws.get_message() == "3probe"
            await trio.testing.wait_all_tasks_blocked()
            mock_clock.jump(10)  # no "5" came: the probe WebSocket is closed, long-polling stays
            with pytest.raises(ConnectionClosed) as closed:
                await ws.get_message()
            assert closed.value.reason.code == 1008
            assert closed.value.reason.reason == "upgrade not completed within upgrade_timeout=10 s"
        await trio.testing.wait_all_tasks_blocked()
        assert task_count() == polling_only  # the probe's tasks ended with it
        await app.emit("news", 1, to=connected["sid"])
        assert (await poll(server.port, sid)).text == '42["news",1]'


async def test_an_ack_for_an_unknown_id_is_ignored_and_the_session_goes_on() -> None:
    app = fast_app()

    @app.on("echo")
    async def echo(conn: EventConnection, data: Any) -> Any:
        return data

    async with serving(app) as server:
        with trio.fail_after(10):
            async with raw_session(server) as (ws, _):
                await ws.send_message('43999["nobody asked"]')  # Socket.IO's servers ignore it too
                await ws.send_message('421["echo","still here"]')
                assert await next_event(ws) == '431["still here"]'


async def test_a_polling_client_that_does_not_poll_meets_the_hubs_overflow_policy() -> None:
    app = App(hub=Hub(queue_size=4))
    app.enable_socketio(config=EngineConfig(ping_interval=30, ping_timeout=30))

    @app.on("join")
    async def join(conn: EventConnection, room: str) -> None:
        await conn.join_room(room)

    async with serving(app) as server:
        with trio.fail_after(10):
            sid = await poll_open(server.port)
            assert (await post(server.port, sid, b"40")).text == "ok"
            assert (await poll(server.port, sid)).text.startswith("40")
            assert (await post(server.port, sid, b'421["join","tea"]')).text == "ok"
            assert (await poll(server.port, sid)).text == "431[]"
            # No GET takes them: the emits wait in the member's hub outbox, which overflows.
            reports = [await app.emit("flood", n, to="tea") for n in range(6)]
            assert [r.queued for r in reports] == [1, 1, 1, 1, 0, 0]
            assert app.hub.stats.overflow_closes == 1
            # The hub dropped the member and its outbox: the client's next GET gets the close packet.
            assert (await poll(server.port, sid)).text == "1"
            await links_gone(app)
            assert engine_error(await poll(server.port, sid)) == (400, 1)


async def test_every_origin_is_allowed_by_default_without_credentials() -> None:
    app = polling_app()
    async with serving(app) as server:
        with trio.fail_after(10):
            answer = await http(server.port, "GET", POLLING, headers={"Origin": "https://any.example"})
    assert answer.status == 200
    assert answer.headers["access-control-allow-origin"] == "https://any.example"
    assert "access-control-allow-credentials" not in answer.headers
