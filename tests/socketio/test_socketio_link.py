"""The Engine.IO session of an App's Socket.IO client as its connection (trio_ws.app.socketio_link)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import pytest
import trio

from trio_ws import WebSocketServer, open_websocket_url
from trio_ws.app import App, EventConnection
from trio_ws.app.socketio_link import EngineLink
from trio_ws.socketio import EngineConfig

#: Every test runs under ``trio.fail_after(TIMEOUT)``.
TIMEOUT = 10.0


def quiet_app() -> App:
    """An App whose Engine.IO pings are far apart: none lands in what a test reads."""
    app = App()
    app.enable_socketio(config=EngineConfig(ping_interval=30, ping_timeout=30))
    return app


@asynccontextmanager
async def serving(app: App) -> AsyncIterator[WebSocketServer]:
    async with trio.open_nursery() as nursery:
        server = await nursery.start(partial(app.serve, "127.0.0.1", 0))
        yield server
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def raw_socketio(port: int) -> AsyncIterator[Any]:
    """A raw Engine.IO WebSocket connected to the namespace ``/``."""
    async with open_websocket_url(f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket") as ws:
        assert (await ws.get_message()).startswith("0{")
        await ws.send_message("40")
        answer = await ws.get_message()
        assert answer.startswith("40{")
        yield ws


async def test_a_socketio_clients_link_is_its_engineio_session_and_its_hub_connection() -> None:
    app = quiet_app()
    seen: dict[str, Any] = {}

    @app.on("connect")
    async def connect(conn: EventConnection, auth: Any) -> None:
        websocket = conn.websocket
        link = websocket.link
        seen["link"] = type(link)
        seen["in_hub"] = websocket.in_hub
        seen["member_connection"] = websocket.member.connection is link
        seen["join_again"] = await websocket.join_hub() is websocket.member
        with pytest.raises(RuntimeError, match=r"WebSocket\.link"):
            websocket.connection  # noqa: B018
        seen["request"] = websocket.request.is_websocket

    with trio.fail_after(TIMEOUT):
        async with serving(app) as server, raw_socketio(server.port):
            pass
    assert seen == {
        "link": EngineLink,
        "in_hub": True,
        "member_connection": True,
        "join_again": True,
        "request": True,
    }
