"""Engine.IO over HTTP long-polling and the upgrade to WebSocket (trio_ws.socketio.transport).

Raw HTTP on 127.0.0.1 for the protocol rules and every bad input (the cases
of the engine.io-protocol test suite, with Socket.IO packets inside), then
the real clients: the official socket.io-client in Node with its default
transports (polling, then the upgrade) and with polling only, and
python-socketio's AsyncClient over polling.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
from support.node_ws import NodeWs
from support.rawhttp import Answer, build_request, http, read_answer
from support.sio import SIO_CLIENT, check_full_scenario, run_node, run_python_peer, serve_full_scenario

from trio_ws import ConnectionClosed, ConnectionRejected, WebSocketServer, open_websocket_url, serve_websocket
from trio_ws.socketio import EngineConfig, Handshake, decode_packet
from trio_ws.socketio.server import Socket, SocketIOServer

BASE = "/socket.io/?EIO=4&transport=polling"


class Served:
    """A SocketIOServer on 127.0.0.1 with an echo handler, and raw HTTP helpers for it."""

    def __init__(self, sio: SocketIOServer, server: WebSocketServer) -> None:
        self.sio = sio
        self.port = server.port
        self.reasons: list[str] = []

        @sio.on("echo")
        async def echo(socket: Socket, *args: Any) -> tuple[Any, ...]:
            return args

        @sio.on_disconnect()
        async def gone(socket: Socket, reason: str) -> None:
            self.reasons.append(reason)

    async def get(self, sid: str | None = None, **headers: str) -> Answer:
        return await http(self.port, "GET", BASE + (f"&sid={sid}" if sid else ""), headers=headers)

    async def post(self, sid: str, body: bytes, **headers: str) -> Answer:
        return await http(self.port, "POST", f"{BASE}&sid={sid}", headers=headers, body=body)

    async def open(self) -> str:
        """A new long-polling session; returns its sid."""
        answer = await self.get()
        assert answer.status == 200, answer
        return Handshake.from_packet(decode_packet(answer.text)).sid

    async def connected(self) -> str:
        """A new session connected to the main namespace."""
        sid = await self.open()
        assert (await self.post(sid, b"40")).text == "ok"
        assert (await self.get(sid)).text.startswith('40{"sid":"')
        return sid

    async def sessions_gone(self) -> None:
        """Wait (under the caller's fail_after) until the server holds no session."""
        while self.sio.session_count:  # noqa: ASYNC110 - a real peer's timing, observed through the count
            await trio.sleep(0.01)


async def serve(nursery: trio.Nursery, **options: Any) -> Served:
    sio = SocketIOServer(**options)
    server = await nursery.start(
        lambda task_status: serve_websocket(
            sio, "127.0.0.1", 0, None, process_request=sio.process_request, task_status=task_status
        )
    )
    return Served(sio, server)


@pytest.fixture
async def served(nursery: trio.Nursery) -> AsyncIterator[Served]:
    # Pings far apart: on a loaded machine a ping must not land in a poll a test reads.
    yield await serve(nursery, config=EngineConfig(ping_interval=30, ping_timeout=30))


def engine_error(answer: Answer) -> tuple[int, int]:
    assert answer.headers["content-type"] == "application/json"
    body = json.loads(answer.body)
    return answer.status, body["code"]


# The protocol -------------------------------------------------------------------------------


async def test_handshake_answers_the_open_packet(served: Served) -> None:
    with trio.fail_after(10):
        answer = await served.get()
    assert answer.status == 200
    assert answer.headers["content-type"] == "text/plain; charset=UTF-8"
    assert answer.text.startswith("0")
    assert set(json.loads(answer.text[1:])) == {"sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"}
    handshake = Handshake.from_packet(decode_packet(answer.text))
    assert (handshake.upgrades, handshake.ping_interval, handshake.ping_timeout) == (("websocket",), 30, 30)
    assert handshake.max_payload == 1_000_000
    assert served.sio.session_count == 1


async def test_events_acks_and_binary_over_polling(served: Served) -> None:
    emitted = trio.Event()

    @served.sio.on("twice")
    async def twice(socket: Socket) -> None:
        await socket.emit("one", 1)
        await socket.emit("two", b"\x01\x02\x03")
        emitted.set()

    with trio.fail_after(10):
        sid = await served.connected()
        # Several packets in one body, joined by the record separator.
        answer = await served.post(sid, b'421["echo","a"]\x1e422["echo",{"b":[1]}]')
        assert (answer.status, answer.text, answer.headers["content-type"]) == (200, "ok", "text/html")
        acks: list[str] = []
        while len(acks) < 2:  # the two handlers run concurrently: their answers may come in one poll or two
            acks += (await served.get(sid)).text.split("\x1e")
        assert sorted(acks) == ['431["a"]', '432[{"b":[1]}]']
        # What is queued by the time a GET comes is answered at once, joined; bytes as a base64 "b" packet.
        await served.post(sid, b'42["twice"]')
        await emitted.wait()
        polled = await served.get(sid)
        assert polled.text == '42["one",1]\x1e451-["two",{"_placeholder":true,"num":0}]\x1ebAQID'
        # A binary attachment from the client, the same way.
        await served.post(sid, b'451-3["echo",{"_placeholder":true,"num":0}]\x1ebAQID')
        polled = await served.get(sid)
    assert polled.text == '461-3[{"_placeholder":true,"num":0}]\x1ebAQID'


async def test_heartbeat_over_polling(nursery: trio.Nursery) -> None:
    served = await serve(nursery, config=EngineConfig(ping_interval=0.05, ping_timeout=5))
    with trio.fail_after(10):
        sid = await served.open()
        for _ in range(3):
            assert (await served.get(sid)).text == "2"  # the held GET is answered by the ping
            assert (await served.post(sid, b"3")).text == "ok"
    assert served.sio.session_count == 1


async def test_abandoned_session_ends_by_ping_timeout(nursery: trio.Nursery) -> None:
    served = await serve(nursery, config=EngineConfig(ping_interval=0.05, ping_timeout=0.05))
    with trio.fail_after(10):
        sid = await served.open()
        assert (await served.post(sid, b"40")).text == "ok"
        await served.sessions_gone()  # nobody polls: the ping is never answered
        assert engine_error(await served.get(sid)) == (400, 1)
    assert served.reasons == ["ping timeout"]


async def test_client_close_releases_the_held_get(served: Served) -> None:
    with trio.fail_after(10):
        sid = await served.connected()
        async with trio.open_nursery() as nursery:
            held: list[Answer] = []

            async def poll() -> None:
                held.append(await served.get(sid))

            nursery.start_soon(poll)
            await trio.testing.wait_all_tasks_blocked()
            assert (await served.post(sid, b"1")).text == "ok"
        assert held[0].text == "6"
        assert engine_error(await served.get(sid)) == (400, 1)
    assert served.reasons == ["client close"]


async def test_client_leaving_a_held_get_ends_the_session(served: Served) -> None:
    with trio.fail_after(10):
        sid = await served.connected()
        stream = await trio.open_tcp_stream("127.0.0.1", served.port)
        await stream.send_all(build_request("GET", f"{BASE}&sid={sid}"))
        await trio.testing.wait_all_tasks_blocked()
        await stream.aclose()
        await served.sessions_gone()
    assert served.reasons == ["transport close"]


async def test_large_answers_are_not_bound_by_the_reject_limit(served: Served) -> None:
    big = "x" * (2**20 + 100)

    @served.sio.on("big")
    async def send_big(socket: Socket) -> None:
        await socket.emit("big", big)

    with trio.fail_after(10):
        sid = await served.connected()
        await served.post(sid, b'42["big"]')
        polled = await served.get(sid)
    assert polled.text == '42["big","' + big + '"]'


# Bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "target", "status", "code"),
    [
        ("GET", "/socket.io/?transport=polling", 400, 5),
        ("GET", "/socket.io/?EIO=3&transport=polling", 400, 5),
        ("GET", "/socket.io/?EIO=4", 400, 0),
        ("GET", "/socket.io/?EIO=4&transport=abc", 400, 0),
        ("GET", "/socket.io/?EIO=4&transport=websocket", 400, 3),  # not an upgrade
        ("POST", BASE, 400, 2),
        ("PUT", BASE, 400, 2),
        ("GET", f"{BASE}&sid=unknown", 400, 1),
        ("POST", f"{BASE}&sid=unknown", 400, 1),
    ],
)
async def test_bad_requests_get_the_engineio_error(
    served: Served, method: str, target: str, status: int, code: int
) -> None:
    with trio.fail_after(10):
        answer = await http(served.port, method, target, body=b"40" if method != "GET" else None)
    assert engine_error(answer) == (status, code)
    assert served.sio.session_count == 0


async def test_wrong_method_on_a_session_is_400_and_other_paths_404(served: Served) -> None:
    with trio.fail_after(10):
        sid = await served.open()
        assert engine_error(await http(served.port, "PUT", f"{BASE}&sid={sid}", body=b"")) == (400, 3)
        assert (await http(served.port, "GET", "/elsewhere/?EIO=4&transport=polling")).status == 404
    assert served.sio.session_count == 1  # a wrong method does not end the session


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (b"abc", {}, 400),  # malformed Engine.IO payload
        (b"4abc", {}, 400),  # malformed Socket.IO packet
        (b"4\xff", {}, 400),  # not UTF-8
        (b"4" + b"x" * 200, {}, 413),  # over max_payload
        (None, {}, 411),  # no length
    ],
)
async def test_bad_post_is_refused_and_ends_the_session(
    nursery: trio.Nursery, body: bytes | None, headers: dict[str, str], status: int
) -> None:
    served = await serve(nursery, config=EngineConfig(max_payload=100))
    with trio.fail_after(10):
        sid = await served.connected()
        answer = await http(served.port, "POST", f"{BASE}&sid={sid}", headers=headers, body=body)
        assert answer.status == status
        if status == 400:
            assert json.loads(answer.body) == {"code": 3, "message": "Bad request"}
        await served.sessions_gone()
        assert engine_error(await served.get(sid)) == (400, 1)


async def test_post_body_slower_than_ping_timeout_is_408_and_ends_the_session(nursery: trio.Nursery) -> None:
    served = await serve(nursery, config=EngineConfig(ping_interval=30, ping_timeout=0.1))
    with trio.fail_after(10):
        sid = await served.connected()
        slow = await trio.open_tcp_stream("127.0.0.1", served.port)
        async with slow:
            await slow.send_all(build_request("POST", f"{BASE}&sid={sid}", headers={"Content-Length": "10"}))
            answer = await read_answer(slow)
        assert (answer.status, answer.text) == (408, "the request body did not arrive within timeout=0.1 s")
        await served.sessions_gone()
    assert served.reasons == ["transport error"]


async def test_overlapping_gets_end_the_session(served: Served) -> None:
    with trio.fail_after(10):
        sid = await served.connected()
        async with trio.open_nursery() as nursery:
            first: list[Answer] = []

            async def poll() -> None:
                first.append(await served.get(sid))

            nursery.start_soon(poll)
            await trio.testing.wait_all_tasks_blocked()
            assert engine_error(await served.get(sid)) == (400, 3)
        assert first[0].text == "1"  # the waiting GET gets the close packet
        assert engine_error(await served.get(sid)) == (400, 1)
    assert served.reasons == ["transport error"]


async def test_overlapping_posts_end_the_session(served: Served) -> None:
    with trio.fail_after(10):
        sid = await served.connected()
        slow = await trio.open_tcp_stream("127.0.0.1", served.port)
        async with slow:
            await slow.send_all(build_request("POST", f"{BASE}&sid={sid}", headers={"Content-Length": "10"}))
            await trio.testing.wait_all_tasks_blocked()
            assert engine_error(await served.post(sid, b"3")) == (400, 3)
            await served.sessions_gone()
            await slow.send_all(b'42["echo"]')
            assert (await read_answer(slow)).text == "ok"  # read, but the session has ended
    assert served.reasons == ["transport error"]


async def test_cors_preflight_headers_and_refused_origins(nursery: trio.Nursery) -> None:
    served = await serve(nursery, cors_allowed_origins=["https://app.example"])
    with trio.fail_after(10):
        preflight = await http(
            served.port,
            "OPTIONS",
            BASE,
            headers={"Origin": "https://app.example", "Access-Control-Request-Headers": "content-type"},
        )
        assert preflight.status == 204
        assert preflight.headers["access-control-allow-origin"] == "https://app.example"
        assert preflight.headers["access-control-allow-credentials"] == "true"
        assert preflight.headers["access-control-allow-methods"] == "GET, POST, OPTIONS"
        assert preflight.headers["access-control-allow-headers"] == "content-type"
        opened = await served.get(Origin="https://app.example")
        assert opened.status == 200
        assert opened.headers["access-control-allow-origin"] == "https://app.example"
        assert opened.headers["access-control-allow-credentials"] == "true"
        refused = await served.get(Origin="https://evil.example")
        assert engine_error(refused) == (403, 4)
        assert "access-control-allow-origin" not in refused.headers
        assert engine_error(await served.get()) == (403, 4)  # no Origin, and None is not listed
        with pytest.raises(ConnectionRejected) as info:
            async with open_websocket_url(
                f"ws://127.0.0.1:{served.port}/socket.io/?EIO=4&transport=websocket",
                extra_headers=[("Origin", "https://evil.example")],
            ):
                pass
        assert info.value.status_code == 403
    assert served.sio.session_count == 1


async def test_every_origin_is_allowed_by_default_without_credentials(served: Served) -> None:
    with trio.fail_after(10):
        answer = await served.get(Origin="https://any.example")
    assert answer.status == 200
    assert answer.headers["access-control-allow-origin"] == "https://any.example"
    assert "access-control-allow-credentials" not in answer.headers


# The upgrade --------------------------------------------------------------------------------


def ws_url(served: Served, sid: str) -> str:
    return f"ws://127.0.0.1:{served.port}/socket.io/?EIO=4&transport=websocket&sid={sid}"


async def test_upgrade_from_polling_to_websocket(served: Served) -> None:
    with trio.fail_after(10):
        sid = await served.connected()
        async with open_websocket_url(ws_url(served, sid)) as ws, trio.open_nursery() as nursery:
            held: list[Answer] = []
            released = trio.Event()

            async def poll() -> None:
                held.append(await served.get(sid))
                released.set()

            nursery.start_soon(poll)
            await trio.testing.wait_all_tasks_blocked()
            await served.post(sid, b'421["echo","before"]')  # answered on the polling side
            await ws.send_message("2probe")
            assert await ws.get_message() == "3probe"
            await released.wait()
            assert held[0].text == '431["before"]'
            assert (await served.get(sid)).text == "6"  # paused polling: the last GET gets a noop
            await served.post(sid, b'422["echo","between"]')  # its answer waits for the upgrade
            await ws.send_message("5")
            assert await ws.get_message() == '432["between"]'
            await ws.send_message('423["echo","after"]')
            assert await ws.get_message() == '433["after"]'
            # The session now lives on the WebSocket: polling and a second WebSocket are refused.
            assert engine_error(await served.get(sid)) == (400, 3)
            assert engine_error(await served.post(sid, b"3")) == (400, 3)
            with pytest.raises(ConnectionRejected) as info:
                async with open_websocket_url(ws_url(served, sid)):
                    pass
            assert json.loads(info.value.body or b"") == {"code": 3, "message": "Bad request"}
        await served.sessions_gone()
    assert served.reasons == ["transport close"]


@pytest.mark.parametrize(
    ("frames", "reason"),
    [
        (["5"], "upgrade packet before the probe (2probe)"),
        (["2probe", "4hello"], "unexpected message packet 'hello' on the probing WebSocket"),
        (["xyz"], "unknown Engine.IO packet type 'x' in 'xyz' (expected 0-6 or 'b')"),
    ],
)
async def test_failed_probe_closes_the_websocket_and_polling_goes_on(
    served: Served, frames: list[str], reason: str
) -> None:
    with trio.fail_after(10):
        sid = await served.connected()
        async with open_websocket_url(ws_url(served, sid)) as ws:
            for frame in frames:
                await ws.send_message(frame)
            with pytest.raises(ConnectionClosed) as info:
                while True:
                    await ws.get_message()
        assert (info.value.reason.code, info.value.reason.reason) == (1008, reason)
        await served.post(sid, b'421["echo","still polling"]')
        assert (await served.get(sid)).text == '431["still polling"]'


async def test_websocket_closed_during_the_probe_leaves_polling_alone(served: Served) -> None:
    with trio.fail_after(10):
        sid = await served.connected()
        async with open_websocket_url(ws_url(served, sid)) as ws:
            await ws.send_message("2probe")
            assert await ws.get_message() == "3probe"
        await served.post(sid, b'421["echo","still polling"]')
        assert (await served.get(sid)).text == '431["still polling"]'
        # The session can be probed again by a new WebSocket.
        async with open_websocket_url(ws_url(served, sid)) as ws:
            await ws.send_message("2probe")
            assert await ws.get_message() == "3probe"
    assert served.sio.session_count == 1


async def test_second_websocket_during_a_probe_is_refused(served: Served) -> None:
    with trio.fail_after(10):
        sid = await served.connected()
        async with open_websocket_url(ws_url(served, sid)) as ws:
            await ws.send_message("2probe")
            assert await ws.get_message() == "3probe"
            # engine.io-protocol v4: one WebSocket per session.
            with pytest.raises(ConnectionRejected) as info:
                async with open_websocket_url(ws_url(served, sid)):
                    pass
            assert json.loads(info.value.body or b"") == {"code": 3, "message": "Bad request"}
            await ws.send_message("5")
            await ws.send_message('421["echo","upgraded"]')
            assert await ws.get_message() == '431["upgraded"]'


async def test_probe_that_never_completes_times_out(nursery: trio.Nursery) -> None:
    served = await serve(nursery, config=EngineConfig(upgrade_timeout=0.05))
    with trio.fail_after(10):
        sid = await served.connected()
        async with open_websocket_url(ws_url(served, sid)) as ws:
            await ws.send_message("2probe")
            assert await ws.get_message() == "3probe"
            with pytest.raises(ConnectionClosed) as info:
                await ws.get_message()
        assert info.value.reason.reason == "upgrade not completed within upgrade_timeout=0.05 s"
        await served.post(sid, b'421["echo","still polling"]')
        assert (await served.get(sid)).text == '431["still polling"]'


async def test_server_shutdown_ends_polling_sessions(nursery: trio.Nursery) -> None:
    sio = SocketIOServer()
    scope = trio.CancelScope()

    async def run_server(task_status: trio.TaskStatus[WebSocketServer]) -> None:
        with scope:
            await serve_websocket(
                sio, "127.0.0.1", 0, None, process_request=sio.process_request, task_status=task_status
            )

    served = Served(sio, await nursery.start(run_server))
    with trio.fail_after(10):
        await served.connected()
        await served.connected()
        scope.cancel()
        await served.sessions_gone()
    assert served.reasons == ["server shutting down", "server shutting down"]


# Real clients -------------------------------------------------------------------------------


@pytest.mark.parametrize(("transports", "final"), [("default", "websocket"), ("polling", "polling")])
async def test_official_client_over_polling_and_the_upgrade(
    node_socketio: NodeWs, served: Served, transports: str, final: str
) -> None:
    seen, disconnected = serve_full_scenario(served.sio)
    records = await run_node(node_socketio, SIO_CLIENT, f"http://127.0.0.1:{served.port}/", "full", transports)
    assert await check_full_scenario(records, seen, disconnected, "client namespace disconnect") == final
    with trio.fail_after(10):
        await served.sessions_gone()


async def test_official_client_namespaces_over_polling(node_socketio: NodeWs, served: Served) -> None:
    from trio_ws.socketio import ConnectRefused

    @served.sio.on_connect("/private")
    async def private(socket: Socket, auth: Any) -> None:
        raise ConnectRefused("Not authorized", {"hint": "send a token"})

    @served.sio.on("where", namespace="/chat")
    async def where(socket: Socket) -> str:
        return socket.namespace

    records = await run_node(node_socketio, SIO_CLIENT, f"http://127.0.0.1:{served.port}/", "namespaces", "default")
    assert sorted(records, key=lambda r: r["event"]) == [
        {"event": "chat-where", "answer": ["/chat"], "same_manager": True},
        {"event": "refused", "message": "Not authorized", "data": {"hint": "send a token"}},
        {"event": "unknown", "message": "Invalid namespace"},
    ]


async def test_python_socketio_client_over_polling(python_socketio: None, served: Served) -> None:
    seen, disconnected = serve_full_scenario(served.sio)
    records = await run_python_peer(served.port, "polling")
    # python-socketio's disconnect() over polling sends DISCONNECT, then the Engine.IO close.
    assert await check_full_scenario(records, seen, disconnected, "client namespace disconnect") == "polling"
    with trio.fail_after(10):
        await served.sessions_gone()
