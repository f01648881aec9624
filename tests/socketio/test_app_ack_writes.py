"""Acknowledgements to Socket.IO clients on an App: written by the worker that ran the handler.

On the WebSocket transport, an ack that finds the member's hub outbox empty
is written at once by the event's worker, instead of being queued for the
hub's sender (trio_ws.app.socketio, ``SocketIOConnection._send_answer``).
What must still hold: acks come after everything the handler queued before
returning, in order; over long-polling they still reach the client; and a
client that stops reading holds only its own session, which ends (ping
timeout, or the hub closing it on overflow) without leaving a task behind,
while other clients are served. Real sockets on 127.0.0.1, raw Engine.IO
frames.
"""

from __future__ import annotations

import base64
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
import trio.testing
from support.rawhttp import http
from support.sio_app import next_packet, serving, task_count

from trio_ws import ConnectionClosed, WebSocketConnection, WebSocketServer, open_websocket_url, wrap_client_stream
from trio_ws.app import App, EventConnection
from trio_ws.hub import Hub
from trio_ws.socketio import EngineConfig, Handshake, decode_packet

TIMEOUT = 20
#: A few of these fill the socket buffers of a client that does not read (random: compression cannot shrink them).
BIG = base64.b64encode(os.urandom(192 * 1024)).decode()


@asynccontextmanager
async def connected(server: WebSocketServer, **options: Any) -> AsyncIterator[WebSocketConnection]:
    """A raw Engine.IO WebSocket connected to ``/``."""
    url = f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket"
    async with open_websocket_url(url, **options) as ws:
        assert (await ws.get_message()).startswith("0{")
        await ws.send_message("40")
        assert (await next_packet(ws)).startswith("40")
        yield ws


@asynccontextmanager
async def stalled(server: WebSocketServer) -> AsyncIterator[WebSocketConnection]:
    """A client connected to ``/`` whose socket has a 4 KiB receive buffer and that reads one message at a
    time: once it stops reading, the server's writes to it soon wait."""
    sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    await sock.connect(("127.0.0.1", server.port))
    async with trio.open_nursery() as nursery:
        resource = "/socket.io/?EIO=4&transport=websocket"
        ws = await wrap_client_stream(nursery, trio.SocketStream(sock), "127.0.0.1", resource, message_queue_size=1)
        assert (await ws.get_message()).startswith("0{")
        await ws.send_message("40")
        assert (await next_packet(ws)).startswith("40")
        yield ws
        await ws.aclose()


async def writing(app: App) -> None:
    """Wait until the one Engine.IO session of ``app`` is in the middle of a write (its write lock held)."""
    while not any(link._write_lock.locked() for link in app._engine_links.values()):  # noqa: ASYNC110
        await trio.sleep(0.01)


def echo_app(config: EngineConfig | None = None, **hub: Any) -> App:
    app = App(hub=Hub(**hub)) if hub else App()
    app.enable_socketio(config=config or EngineConfig(ping_interval=0.5, ping_timeout=1.0))

    @app.on("echo")
    async def echo(conn: EventConnection, data: Any) -> Any:
        return data

    @app.on("join")
    async def join(conn: EventConnection, room: str) -> str:
        await conn.join_room(room)
        return "joined"

    @app.on("big")
    async def big(conn: EventConnection, data: Any) -> str:
        return BIG

    return app


async def test_an_ack_comes_after_what_the_handler_queued_before_returning() -> None:
    app = echo_app()

    @app.on("chatty")
    async def chatty(conn: EventConnection, data: Any) -> str:
        await conn.emit("first", 1)  # queued in the member's outbox
        await app.emit("second", 2, to="tea")  # to its room: queued too
        return "done"

    with trio.fail_after(TIMEOUT):
        async with serving(app) as server, connected(server) as ws:
            await ws.send_message('421["join","tea"]')
            assert await next_packet(ws) == '431["joined"]'
            for call_id in range(2, 12):
                await ws.send_message(f'42{call_id}["chatty",null]')
                received = [await next_packet(ws) for _ in range(3)]
                assert received == ['42["first",1]', '42["second",2]', f'43{call_id}["done"]']


async def test_acks_over_long_polling_come_in_the_next_poll() -> None:
    app = echo_app()
    polling = "/socket.io/?EIO=4&transport=polling"
    with trio.fail_after(TIMEOUT):
        async with serving(app) as server:
            opened = await http(server.port, "GET", polling)
            sid = Handshake.from_packet(decode_packet(opened.text)).sid
            assert (await http(server.port, "POST", f"{polling}&sid={sid}", body=b"40")).text == "ok"
            assert (await http(server.port, "GET", f"{polling}&sid={sid}")).text.startswith("40")
            body = b'421["echo","a"]\x1e42["echo","not asked"]\x1e422["echo",{"b":2}]'
            assert (await http(server.port, "POST", f"{polling}&sid={sid}", body=body)).text == "ok"
            acks: list[str] = []
            while len(acks) < 2:
                answer = await http(server.port, "GET", f"{polling}&sid={sid}")
                acks += [packet for packet in answer.text.split("\x1e") if packet.startswith("43")]
            assert acks == ['431["a"]', '432[{"b":2}]']


async def test_a_client_that_stops_reading_holds_only_its_own_session() -> None:
    # Its acks fill the socket buffers, so its worker waits in a write; pings
    # cannot go out either: the session ends at the ping timeout, the
    # WebSocket is closed (dropped, since the client reads nothing), and
    # nothing outlives it. Another client is served all along.
    app = echo_app()
    with trio.fail_after(TIMEOUT):
        async with serving(app) as server:
            await trio.testing.wait_all_tasks_blocked()
            idle = task_count()
            async with connected(server) as other:
                async with stalled(server) as slow:
                    for call_id in range(1, 41):
                        await slow.send_message(f'42{call_id}["big",null]')
                    await writing(app)
                    # The stalled session ends while the other client is served.
                    call_id = 0
                    while len(app._engine_links) > 1:
                        call_id += 1
                        await other.send_message(f'42{call_id}["echo",{call_id}]')
                        assert await next_packet(other) == f"43{call_id}[{call_id}]"
                    assert call_id > 0
                await other.send_message('42999["echo","still here"]')
                assert await next_packet(other) == '43999["still here"]'
            while app._engine_links:  # noqa: ASYNC110 - the last session ends with its client's close
                await trio.sleep(0.01)
            await trio.testing.wait_all_tasks_blocked()
            assert task_count() == idle


async def test_a_client_that_stops_reading_meets_the_overflow_policy_while_its_worker_waits() -> None:
    # The worker waits in the write of an ack; room emits pile up in the
    # member's outbox until it overflows: the hub closes the member (1008)
    # within its grace, which also ends the worker's write.
    app = echo_app(EngineConfig(ping_interval=30, ping_timeout=30), queue_size=4)  # no ping within the test
    with trio.fail_after(TIMEOUT):
        async with serving(app) as server:
            await trio.testing.wait_all_tasks_blocked()
            idle = task_count()
            async with stalled(server) as slow:
                await slow.send_message('421["join","tea"]')
                assert await next_packet(slow) == '431["joined"]'
                for call_id in range(2, 42):
                    await slow.send_message(f'42{call_id}["big",null]')
                await writing(app)
                reports = [await app.emit("flood", n, to="tea") for n in range(6)]
                assert [report.queued for report in reports] == [1, 1, 1, 1, 0, 0]
                assert app.hub.stats.overflow_closes == 1
                with pytest.raises(ConnectionClosed):
                    while True:
                        await slow.get_message()
            while app._engine_links:  # noqa: ASYNC110 - the session ends with the hub's close
                await trio.sleep(0.01)
            await trio.testing.wait_all_tasks_blocked()
            assert task_count() == idle
