"""What Socket.IO clients do when the App's server ends their session, per transport (trio_ws.app.socketio_link).

The server ends a session without a goodbye when the hub drops the member
(``hub.disconnect``, its overflow policy) or a pong is missed; with one when
a handler calls ``conn.disconnect()``. Over WebSocket the first closes the
WebSocket without an Engine.IO ``close`` packet; over long-polling the only
way to tell the client is the ``close`` packet (``1``) in a ``GET``'s answer,
as the reference server does. These tests pin what the official client (long-polling
only) and python-socketio's client (long-polling) then do; the WebSocket and
upgrade cases are in test_app_socketio.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio
import trio.testing
from support.node_ws import NodeWs
from support.rawhttp import Answer, http
from support.sio import PEER_TIMEOUT, SIO_APP_CLIENT, run_node, run_python_peer
from support.sio_app import serving

from trio_ws.app import App, EventConnection
from trio_ws.app.socketio import SocketIOConnection
from trio_ws.socketio import EngineConfig, Handshake, decode_packet

POLLING = "/socket.io/?EIO=4&transport=polling"


def polling_app(**options: Any) -> App:
    app = App()
    # Pings far apart: no ping answers a GET these tests read.
    app.enable_socketio(config=EngineConfig(ping_interval=30, ping_timeout=30), **options)
    return app


async def poll(port: int, sid: str) -> Answer:
    return await http(port, "GET", f"{POLLING}&sid={sid}")


async def connected_polling_session(app: App, port: int) -> tuple[str, SocketIOConnection]:
    """A raw long-polling session that CONNECTed to ``/``; no GET is waiting when this returns."""
    connections: list[SocketIOConnection] = []

    @app.on("connect")
    async def connect(conn: EventConnection, auth: Any) -> None:
        assert isinstance(conn, SocketIOConnection)
        connections.append(conn)

    answer = await http(port, "GET", POLLING)
    sid = Handshake.from_packet(decode_packet(answer.text)).sid
    assert (await http(port, "POST", f"{POLLING}&sid={sid}", body=b"40")).text == "ok"
    assert (await poll(port, sid)).text.startswith("40{")
    (conn,) = connections
    return sid, conn


async def test_a_polling_client_between_two_polls_gets_the_close_packet_on_its_next_get() -> None:
    # The reference server keeps a socket it closes until its next poll takes the close
    # packet; before, the session was gone at once and that GET got HTTP 400, which
    # clients take for a transport error (python-socketio's then reconnects, and does
    # not after a close packet): what a client did depended on when it polled.
    app = polling_app()
    gone = trio.Event()

    @app.on("disconnect")
    async def disconnected(conn: EventConnection) -> None:
        gone.set()

    async with serving(app) as server:
        with trio.fail_after(10):
            sid, conn = await connected_polling_session(app, server.port)
            assert await app.hub.disconnect(conn.id, 1011, "dropped")  # a drop, not a goodbye
            await trio.testing.wait_all_tasks_blocked()
            link = conn.websocket.link
            assert link.closed is not None and link.closed.code == 1011
            answer = await poll(server.port, sid)  # the client's next poll
            assert (answer.status, answer.text) == (200, "1")
            await gone.wait()  # then the session is over
            assert not app._engine_links
            again = await poll(server.port, sid)
            assert (again.status, json.loads(again.body)["code"]) == (400, 1)


async def test_a_polling_client_that_never_polls_again_is_let_go_after_5_s(
    mock_clock: trio.testing.MockClock,
) -> None:
    app = polling_app()
    async with serving(app) as server:
        sid, conn = await connected_polling_session(app, server.port)
        await conn.websocket.link.aclose(1011, "dropped")
        await trio.testing.wait_all_tasks_blocked()
        mock_clock.jump(4.9)
        await trio.testing.wait_all_tasks_blocked()
        assert sid in app._engine_links
        mock_clock.jump(0.1)
        await trio.testing.wait_all_tasks_blocked()
        assert not app._engine_links
        late = await poll(server.port, sid)
        assert (late.status, json.loads(late.body)["code"]) == (400, 1)  # unknown sid


async def test_shutting_down_does_not_wait_for_a_polling_client_to_take_its_close_packet(
    mock_clock: trio.testing.MockClock,
) -> None:
    app = polling_app()
    async with serving(app) as server:
        sid, conn = await connected_polling_session(app, server.port)
        await conn.websocket.link.aclose(1011, "dropped")
        await trio.testing.wait_all_tasks_blocked()
        assert sid in app._engine_links  # waiting for the client's next GET
        stopping = trio.current_time()
        mock_clock.autojump_threshold = 0  # a timer the shutdown waited for would fire at once
    assert trio.current_time() == stopping  # none did
    assert not app._engine_links


# The official client, long-polling only --------------------------------------------------------


def recovering_app(recovery: bool) -> tuple[App, dict[str, Any]]:
    """An app for sio_app_client.cjs's "recover" scenario; ``state`` holds its connections and events."""
    app = App()
    config = EngineConfig(ping_interval=30, ping_timeout=30)
    app.enable_socketio(config=config, max_disconnection_duration=30 if recovery else None)
    state: dict[str, Any] = {"conns": [], "joined": trio.Event(), "got": trio.Event(), "gone": trio.Event()}

    @app.on("join")
    async def join(conn: EventConnection, room: str) -> str:
        await conn.join_room(room)
        conn.session["name"] = "node"
        state["conns"].append(conn)
        return "ok"

    @app.on("ready")
    async def ready(conn: EventConnection, data: Any) -> None:
        state["joined"].set()

    @app.on("got")
    async def got(conn: EventConnection, data: Any) -> None:
        state["got"].set()

    @app.on("whoami")
    async def whoami(conn: EventConnection, data: Any) -> list[Any]:
        assert isinstance(conn, SocketIOConnection)
        return [conn.id, conn.session.get("name"), sorted(conn.rooms()), conn.recovered]

    @app.on("again")
    async def again(conn: EventConnection, data: Any) -> None:
        await app.emit("news", "last", to=conn.id)

    @app.on("disconnect")
    async def disconnected(conn: EventConnection) -> None:
        state["gone"].set()

    return app, state


async def drop_and_miss(node_socketio: NodeWs, recovery: bool) -> tuple[list[dict[str, Any]], str]:
    """The official client (long-polling only) joins "tea"; the hub drops it; three events are
    sent while it is away. Returns its records and its first sid."""
    app, state = recovering_app(recovery)
    async with serving(app) as server, trio.open_nursery() as nursery:
        records: list[dict[str, Any]] = []

        async def node() -> None:
            url = f"http://127.0.0.1:{server.port}/"
            records.extend(await run_node(node_socketio, SIO_APP_CLIENT, url, "recover", "polling"))

        nursery.start_soon(node)
        with trio.fail_after(PEER_TIMEOUT):
            await state["joined"].wait()
            await app.emit("news", 1, to="tea")
            await state["got"].wait()
            old = state["conns"][0]
            assert old.websocket.link.session.transport == "polling"
            assert await app.hub.disconnect(old.id, 1011, "dropped")  # no DISCONNECT packet: not a goodbye
            await state["gone"].wait()  # the close packet went out: the client reconnects after 200 ms
            await app.emit("news", 2, to="tea")
            await app.emit("news", 3, to="tea")
            await app.emit("news", "direct", to=old.id)
    return records, old.id


async def test_the_official_polling_client_dropped_by_the_hub_reconnects_and_recovers(node_socketio: NodeWs) -> None:
    records, old_id = await drop_and_miss(node_socketio, recovery=True)
    assert records == [
        {"event": "connect", "id": old_id, "recovered": False, "connects": 1},
        {"event": "joined", "answer": ["ok"]},
        {"event": "news", "n": 1, "offset_is_string": True},
        {"event": "disconnect", "reason": "transport close"},  # engine.io-client's name for a close packet
        {"event": "connect", "id": old_id, "recovered": True, "connects": 2},
        {"event": "news", "n": 2, "offset_is_string": True},  # missed: each once, in order
        {"event": "news", "n": 3, "offset_is_string": True},
        {"event": "news", "n": "direct", "offset_is_string": True},
        {"event": "whoami", "answer": [[old_id, "node", ["tea"], True]]},
        {"event": "news", "n": "last", "offset_is_string": True},
        {"event": "disconnect", "reason": "io client disconnect"},
    ]


async def test_the_official_polling_client_dropped_by_the_hub_reconnects_to_a_fresh_session_without_recovery(
    node_socketio: NodeWs,
) -> None:
    records, old_id = await drop_and_miss(node_socketio, recovery=False)
    new_id = records[4]["id"]
    assert new_id != old_id
    assert records == [
        {"event": "connect", "id": old_id, "recovered": False, "connects": 1},
        {"event": "joined", "answer": ["ok"]},
        {"event": "news", "n": 1, "offset_is_string": False},
        {"event": "disconnect", "reason": "transport close"},
        {"event": "connect", "id": new_id, "recovered": False, "connects": 2},
        {"event": "whoami", "answer": [[new_id, None, [], False]]},
        {"event": "news", "n": "last", "offset_is_string": False},
        {"event": "disconnect", "reason": "io client disconnect"},
    ]


async def test_the_official_polling_client_does_not_reconnect_after_disconnect(node_socketio: NodeWs) -> None:
    app = polling_app(max_disconnection_duration=30)
    gone = trio.Event()

    @app.on("kick-me")
    async def kick(conn: EventConnection, data: Any) -> None:
        assert isinstance(conn, SocketIOConnection)
        assert conn.websocket.link.session.transport == "polling"
        await conn.disconnect()

    @app.on("disconnect")
    async def disconnected(conn: EventConnection) -> None:
        gone.set()

    async with serving(app) as server:
        url = f"http://127.0.0.1:{server.port}/"
        records = await run_node(node_socketio, SIO_APP_CLIENT, url, "kicked", "polling")
        with trio.fail_after(5):
            await gone.wait()
        assert app._recovery is not None and app._recovery.parked == 0  # a goodbye: nothing to recover
    assert records == [{"event": "disconnect", "reason": "io server disconnect", "active": False}]


# python-socketio's client over long-polling ------------------------------------------------------


@pytest.mark.parametrize("ending", ["drop", "disconnect"])
async def test_python_socketio_over_polling_does_not_reconnect_after_a_drop_or_disconnect(
    python_socketio: None, ending: str
) -> None:
    # python-engineio's client handles a close packet as the server's deliberate
    # end and does not reconnect (with the reference server too); python-socketio
    # has no connection-state recovery. Over WebSocket it reconnects after a drop
    # (test_app_socketio.py).
    app = App()
    # python-engineio's client waits up to max(ping_interval, ping_timeout) + 5 s for its
    # write loop after a close packet: short ones keep the test short.
    app.enable_socketio(config=EngineConfig(ping_interval=1, ping_timeout=1), max_disconnection_duration=30)
    send_ready, receive_ready = trio.open_memory_channel[EventConnection](2)

    @app.on("ready")
    async def ready(conn: EventConnection, data: Any) -> None:
        send_ready.send_nowait(conn)

    async def end() -> None:
        conn = await receive_ready.receive()
        assert isinstance(conn, SocketIOConnection)
        assert conn.websocket.link.session.transport == "polling"
        if ending == "drop":
            assert await app.hub.disconnect(conn.id, 1011, "dropped")
        else:
            await conn.disconnect()

    async with serving(app) as server, trio.open_nursery() as nursery:
        nursery.start_soon(end)
        records = await run_python_peer(server.port, "polling", "serverend")
        nursery.cancel_scope.cancel()
    # "server disconnect": python-engineio's name for a close packet, python-socketio's for a DISCONNECT.
    assert records == [
        {"event": "connect", "transport": "polling"},
        {"event": "disconnect", "reason": "server disconnect"},
        {"event": "ended"},
    ]
    assert receive_ready.statistics().current_buffer_used == 0  # it never came back
    # A drop is kept for recovery (this client cannot use it); a goodbye is not.
    assert app._recovery is not None and app._recovery.parked == (1 if ending == "drop" else 0)
