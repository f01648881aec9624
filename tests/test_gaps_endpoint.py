"""Gap tests for trio_ws/endpoint.py: addresses of closed sockets."""

from __future__ import annotations

from functools import partial

import trio
import trio.testing

import trio_ws
from trio_ws import Endpoint, WebSocketRequest
from trio_ws.endpoint import stream_address

TIMEOUT = 10.0
HOST = "127.0.0.1"


async def test_addresses_of_a_closed_tcp_stream_are_unknown() -> None:
    listeners = await trio.open_tcp_listeners(0, host=HOST)
    async with listeners[0]:
        port = listeners[0].socket.getsockname()[1]
        with trio.fail_after(TIMEOUT):
            client = await trio.open_tcp_stream(HOST, port)
            server = await listeners[0].accept()
    assert stream_address(client, remote=True) == Endpoint(HOST, port, False)
    await client.aclose()
    await server.aclose()
    assert stream_address(client, remote=True) == "<unknown>"
    assert stream_address(client, remote=False) == "<unknown>"


async def test_connection_addresses_after_close_are_unknown(nursery: trio.Nursery) -> None:
    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        async for message in ws:
            await ws.send_message(message)

    with trio.fail_after(TIMEOUT):
        server = await nursery.start(partial(trio_ws.serve_websocket, handler, HOST, 0, None))
        ws = await trio_ws.connect_websocket(nursery, HOST, server.port, "/", use_ssl=False, ping_interval=None)
        assert ws.remote == Endpoint(HOST, server.port, False)
        local = ws.local
        assert isinstance(local, Endpoint) and local.address == HOST
        await ws.aclose()
    assert ws.remote == "<unknown>"
    assert ws.local == "<unknown>"


def test_address_of_a_stream_without_socket_is_its_repr() -> None:
    # trio-websocket's convention: any other stream is described by repr().
    client, _ = trio.testing.memory_stream_pair()
    assert stream_address(client, remote=True) == repr(client)
    assert stream_address(client, remote=False).startswith("StapledStream(")
