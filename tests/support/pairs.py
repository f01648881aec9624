"""A trio_ws client and server connected to each other in the test's own process."""

from __future__ import annotations

from typing import Any

import trio
import trio.testing

import trio_ws
from trio_ws import WebSocketConnection


async def ws_pair(
    nursery: trio.Nursery,
    path: str = "/",
    *,
    client: dict[str, Any] | None = None,
    server: dict[str, Any] | None = None,
    streams: tuple[trio.abc.Stream, trio.abc.Stream] | None = None,
) -> tuple[WebSocketConnection, WebSocketConnection]:
    """(client, server): trio_ws on both ends of ``streams`` (a memory stream pair by default).

    ``client`` and ``server`` are the options of ``wrap_client_stream`` and
    ``wrap_server_stream``; the connections' tasks run in ``nursery``.
    """
    client_stream, server_stream = streams or trio.testing.memory_stream_pair()
    result: dict[str, WebSocketConnection] = {}

    async def server_side() -> None:
        request = await trio_ws.wrap_server_stream(nursery, server_stream, **(server or {}))
        result["server"] = await request.accept()

    async def client_side() -> None:
        result["client"] = await trio_ws.wrap_client_stream(nursery, client_stream, "localhost", path, **(client or {}))

    async with trio.open_nursery() as handshake:
        handshake.start_soon(server_side)
        handshake.start_soon(client_side)
    return result["client"], result["server"]
