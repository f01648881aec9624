"""Socket.IO clients of Apps in two "processes" (two hubs on one real redis-server, one trio run).

An emit in App A reaches the Socket.IO clients (and envelope clients) of
App B in their own encodings; a HubClient worker emits to them with
``App.event_message``. The Socket.IO clients speak raw Engine.IO frames over
real trio_ws connections (the official clients are run in tests/socketio).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
from support.sio_app import next_packet, serving

from trio_ws import WebSocketConnection, WebSocketServer, open_websocket_url
from trio_ws.app import App, EventConnection
from trio_ws.app.namespaces import hub_room
from trio_ws.hub import HistoryPolicy, Hub
from trio_ws.hub.client import HubClient

coredis = pytest.importorskip("coredis", reason="coredis is not installed (test extra)")

from node_support import FAST  # noqa: E402

from trio_ws.hub.redis import RedisBackend  # noqa: E402

TIMEOUT = 15.0


def chat_app(url: str, prefix: str, process_id: str, history: HistoryPolicy | None = None) -> App:
    app = App(hub=Hub(backend=RedisBackend(url, prefix=prefix, process_id=process_id, **FAST), history=history))
    app.enable_socketio()

    @app.on("join")
    async def join(conn: EventConnection, room: str) -> str:
        await conn.join_room(room)
        return conn.id

    return app


@asynccontextmanager
async def socketio_member(server: WebSocketServer, room: str) -> AsyncIterator[tuple[WebSocketConnection, str]]:
    """A raw Socket.IO client connected to ``/`` and joined to ``room``: the connection and its sid."""
    async with open_websocket_url(f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket") as ws:
        assert (await ws.get_message()).startswith("0{")
        await ws.send_message("40")
        sid = json.loads((await ws.get_message())[2:])["sid"]
        await ws.send_message(f'421["join",{json.dumps(room)}]')
        assert await ws.get_message() == f'431["{sid}"]'
        yield ws, sid


async def test_an_emit_in_one_process_reaches_socketio_and_envelope_clients_of_another(
    redis_server: Any,  # conftest.RedisServer
) -> None:
    prefix = f"t{uuid.uuid4().hex[:12]}"
    app_a = chat_app(redis_server.url, prefix, "A")
    app_b = chat_app(redis_server.url, prefix, "B")
    with trio.fail_after(TIMEOUT):
        async with (
            serving(app_a),
            serving(app_b) as server_b,
            socketio_member(server_b, "tea") as (sio, sid),
            open_websocket_url(f"ws://127.0.0.1:{server_b.port}/ws") as envelope,
        ):
            await envelope.send_message(json.dumps({"type": "event", "event": "join", "data": "tea", "id": 1}))
            assert json.loads(await envelope.get_message())["type"] == "ack"
            report = await app_a.emit("news", {"n": 1}, to="tea")
            assert report.published and report.queued == 0
            assert await next_packet(sio) == '42["news",{"n":1}]'
            assert json.loads(await envelope.get_message()) == {
                "type": "event",
                "event": "news",
                "namespace": "/",
                "data": {"n": 1},
            }
            # Binary attachments cross too, to the Socket.IO client only.
            await app_a.emit("blob", (b"\x00\xff", "x"), to="tea")
            assert await next_packet(sio) == '451-["blob",{"_placeholder":true,"num":0},"x"]'
            assert await next_packet(sio) == b"\x00\xff"
            # To one connection of the other process, by its sid.
            assert await app_a.emit("direct", "hi", to=sid) is True
            assert await next_packet(sio) == '42["direct","hi"]'
            # A worker without connections emits through a HubClient.
            worker = HubClient(RedisBackend(redis_server.url, prefix=prefix, process_id="W", **FAST))
            async with worker:
                message = app_a.event_message("from-worker", {"n": 2})
                assert await worker.broadcast(hub_room("/", "tea"), message)
            assert await next_packet(sio) == '42["from-worker",{"n":2}]'
            assert json.loads(await envelope.get_message())["event"] == "from-worker"


async def test_rooms_streamed_through_redis_reach_socketio_clients_of_every_process(
    redis_server: Any,  # conftest.RedisServer
) -> None:
    prefix = f"t{uuid.uuid4().hex[:12]}"
    app_a = chat_app(redis_server.url, prefix, "A", HistoryPolicy())
    app_b = chat_app(redis_server.url, prefix, "B", HistoryPolicy())
    with trio.fail_after(TIMEOUT):
        async with (
            serving(app_a) as server_a,
            serving(app_b) as server_b,
            socketio_member(server_a, "tea") as (sio_a, _),
            socketio_member(server_b, "tea") as (sio_b, _),
        ):
            report = await app_a.emit("news", {"n": 1}, to="tea")
            assert report.published
            for sio in (sio_a, sio_b):
                assert await next_packet(sio) == '42["news",{"n":1}]'


def test_event_message_without_socketio_is_the_envelope() -> None:
    app = App()
    message: Any = app.event_message("news", {"n": 1})
    assert json.loads(message) == {"type": "event", "event": "news", "namespace": "/", "data": {"n": 1}}
