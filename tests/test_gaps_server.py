"""Gap tests for trio_ws/server.py: properties, hook and handler edge cases.

Servers listen on 127.0.0.1 (or a Unix socket, or a listener of in-memory
streams where a misbehaving transport is needed); clients are raw sockets or
trio_ws's own client.
"""

from __future__ import annotations

import base64
import logging
import os
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

import trio_ws
from trio_ws import ConnectionRejected, WebSocketConnection, WebSocketRequest, WebSocketServer
from trio_ws.server import Handler

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

TIMEOUT = 10.0
HOST = "127.0.0.1"
KEY = base64.b64encode(b"0123456789abcdef")
UPGRADE = (
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: " + KEY + b"\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


@asynccontextmanager
async def serving(handler: Handler, **options: Any) -> AsyncIterator[WebSocketServer]:
    async with trio.open_nursery() as nursery:
        server = await nursery.start(partial(trio_ws.serve_websocket, handler, HOST, 0, None, **options))
        yield server
        nursery.cancel_scope.cancel()


async def read_until_eof(stream: trio.abc.Stream) -> bytes:
    data = bytearray()
    while chunk := await stream.receive_some(65536):
        data += chunk
    return bytes(data)


async def until_no_connections(server: WebSocketServer) -> None:
    """Wait until the server has dropped its connections (when their tasks end)."""
    while server.connections:  # noqa: ASYNC110 - the server has no event for this
        await trio.sleep(0.01)


def flatten(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in flatten(inner)]
    return [exc]


async def echo_handler(request: WebSocketRequest) -> None:
    ws = await request.accept()
    async for message in ws:
        await ws.send_message(message)


# -- properties --------------------------------------------------------------------
async def test_connections_and_options_reflect_the_server() -> None:
    accepted: list[WebSocketConnection] = []
    handler_done = trio.Event()

    async def handler(request: WebSocketRequest) -> None:
        accepted.append(await request.accept())
        async for message in accepted[0]:
            await accepted[0].send_message(message)
        handler_done.set()

    with trio.fail_after(TIMEOUT):
        async with serving(handler, max_message_size=1234, ping_interval=None) as server:
            assert server.options.max_message_size == 1234
            assert server.options.ping_interval is None
            assert server.connections == frozenset()
            async with trio_ws.open_websocket_url(f"ws://{HOST}:{server.port}/") as ws:
                await ws.send_message("hi")
                assert await ws.get_message() == "hi"
                assert server.connections == frozenset(accepted)
                assert len(accepted) == 1
            await handler_done.wait()
            await until_no_connections(server)


# -- process_request ---------------------------------------------------------------
async def test_process_request_that_answers_then_raises_keeps_its_answer(caplog: pytest.LogCaptureFixture) -> None:
    handler_runs: list[str] = []

    async def handler(request: WebSocketRequest) -> None:
        handler_runs.append(request.path)  # pragma: no cover - must not run
        await echo_handler(request)  # pragma: no cover

    hook_done = trio.Event()

    async def hook(request: WebSocketRequest) -> None:
        await request.reject(401, body=b"who are you")
        hook_done.set()
        raise RuntimeError("bug after answering")

    with trio.fail_after(TIMEOUT):
        async with serving(handler, process_request=hook) as server:
            with pytest.raises(ConnectionRejected) as info:
                async with trio_ws.open_websocket_url(f"ws://{HOST}:{server.port}/"):
                    pytest.fail("hook rejected the request")  # pragma: no cover
            await hook_done.wait()  # the server logs before its next checkpoint
    assert info.value.status_code == 401  # not replaced by a 500
    assert info.value.body == b"who are you"
    assert handler_runs == []
    assert any(record.message.endswith("process_request raised") for record in caplog.records)


# -- handler endings ---------------------------------------------------------------
async def test_handler_ended_by_the_peer_closing_is_not_an_error(caplog: pytest.LogCaptureFixture) -> None:
    ended = trio.Event()

    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        try:
            while True:
                await ws.get_message()  # raises ConnectionClosed once the client closes
        finally:
            ended.set()

    caplog.set_level(logging.DEBUG, logger="trio_ws")
    with trio.fail_after(TIMEOUT):
        async with serving(handler) as server:
            async with trio_ws.open_websocket_url(f"ws://{HOST}:{server.port}/") as ws:
                await ws.send_message("bye")
            await ended.wait()
            await until_no_connections(server)
    assert ws.closed is not None and ws.closed.code == 1000
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert any("handler ended by a closed connection" in record.message for record in caplog.records)


@pytest.mark.parametrize("exc_type", [SystemExit, KeyboardInterrupt])
async def test_handler_system_exit_or_keyboard_interrupt_stops_the_server(exc_type: type[BaseException]) -> None:
    async def handler(request: WebSocketRequest) -> None:
        await request.accept()
        raise exc_type

    caught: BaseException | None = None
    with trio.fail_after(TIMEOUT):
        try:
            async with trio.open_nursery() as nursery:
                server = await nursery.start(partial(trio_ws.serve_websocket, handler, HOST, 0, None))
                stream = await trio.open_tcp_stream(HOST, server.port)
                await stream.send_all(UPGRADE)
                await trio.sleep_forever()
        except BaseException as exc:
            caught = exc
    assert caught is not None
    assert [type(leaf) for leaf in flatten(caught)] == [exc_type]


async def test_server_shutdown_before_the_handler_answers_gets_503() -> None:
    handler_started = trio.Event()

    async def handler(request: WebSocketRequest) -> None:
        handler_started.set()
        await trio.sleep_forever()  # never accepts nor rejects

    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(partial(trio_ws.serve_websocket, handler, HOST, 0, None))
            stream = await trio.open_tcp_stream(HOST, server.port)
            await stream.send_all(UPGRADE)
            await handler_started.wait()
            nursery.cancel_scope.cancel()
        response = await read_until_eof(stream)
    assert response.startswith(b"HTTP/1.1 503 "), response[:100]


# -- Unix sockets ------------------------------------------------------------------
async def test_unix_server_on_an_existing_path_fails_and_keeps_the_file(tmp_path: Path) -> None:
    path = str(tmp_path / "taken.sock")
    if len(path) > 100:  # AF_UNIX paths are limited to ~108 bytes
        path = os.path.join(tempfile.mkdtemp(prefix="tws"), "taken.sock")
    await trio.Path(path).write_bytes(b"someone else's file")
    with trio.fail_after(TIMEOUT):
        with pytest.raises(OSError):
            await trio_ws.serve_websocket_unix(echo_handler, path)
    assert await trio.Path(path).read_bytes() == b"someone else's file"


# -- a transport that fails in an unexpected way -----------------------------------
class MemoryListener(trio.abc.Listener[trio.abc.Stream]):
    """A listener whose accepted streams are handed to it by the test."""

    def __init__(self) -> None:
        self.incoming, self._accept = trio.open_memory_channel[trio.abc.Stream](8)

    async def accept(self) -> trio.abc.Stream:
        return await self._accept.receive()

    async def aclose(self) -> None:
        await self._accept.aclose()


class ExplodingStream(trio.abc.Stream):
    """A transport whose receive fails with an error no transport should raise."""

    def __init__(self, inner: trio.abc.Stream) -> None:
        self.inner = inner

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        await trio.lowlevel.checkpoint()
        raise RuntimeError("a transport bug")

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_unexpected_transport_error_is_logged_and_the_server_serves_on(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    listener = MemoryListener()
    server = WebSocketServer(echo_handler, [listener], ping_interval=None)
    with trio.fail_after(TIMEOUT):
        await nursery.start(server.run)
        bad_client, bad_server = trio.testing.memory_stream_pair()
        await listener.incoming.send(ExplodingStream(bad_server))
        assert await read_until_eof(bad_client) == b""  # its transport was closed

        good_client, good_server = trio.testing.memory_stream_pair()
        await listener.incoming.send(good_server)
        ws = await trio_ws.wrap_client_stream(nursery, good_client, "localhost", "/", ping_interval=None)
        await ws.send_message("still serving")
        assert await ws.get_message() == "still serving"
        await ws.aclose()
    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "unexpected error while serving a connection" in errors[0].message
    assert errors[0].exc_info is not None and isinstance(errors[0].exc_info[1], RuntimeError)


async def test_server_shutdown_while_the_handler_runs_its_own_nursery_closes_with_1001(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The handler's nursery turns the shutdown into a group of Cancelled: still a shutdown, not a crash."""
    handler_ready = trio.Event()

    async def handler(request: WebSocketRequest) -> None:
        await request.accept()
        async with trio.open_nursery() as tasks:
            tasks.start_soon(trio.sleep_forever)
            handler_ready.set()
            await trio.sleep_forever()

    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as client_nursery:
            async with trio.open_nursery() as server_nursery:
                server = await server_nursery.start(partial(trio_ws.serve_websocket, handler, HOST, 0, None))
                ws = await trio_ws.connect_websocket(
                    client_nursery, HOST, server.port, "/", use_ssl=False, ping_interval=None
                )
                await handler_ready.wait()
                server_nursery.cancel_scope.cancel()
            await ws.wait_closed()
    assert ws.closed is not None
    assert (ws.closed.code, ws.closed.reason) == (1001, "server shutting down")
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]
