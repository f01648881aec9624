"""Gap tests for trio_ws/client.py: the less travelled client paths.

Raw servers speak bytes over in-memory stream pairs, TCP on 127.0.0.1 or Unix
sockets; timing-sensitive tests over real sockets use short real timeouts.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import socket
import struct
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

import trio_ws
from trio_ws import ConnectionRejected, ConnectionTimeout, HandshakeError, WebSocketRequest

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

TIMEOUT = 10.0
HOST = "127.0.0.1"
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


# -- helpers -------------------------------------------------------------------
async def read_head(stream: trio.abc.Stream) -> bytes:
    data = bytearray()
    while b"\r\n\r\n" not in data:
        chunk = await stream.receive_some(65536)
        if not chunk:
            raise EOFError("client closed before sending its request")
        data += chunk
    return bytes(data)


def switching_protocols(head: bytes) -> bytes:
    match = re.search(rb"(?im)^sec-websocket-key:[ \t]*(\S+)", head)
    assert match is not None, head
    accept = base64.b64encode(hashlib.sha1(match.group(1) + _GUID).digest())
    return (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )


async def client_against_raw_server(
    raw_server: Callable[[trio.abc.Stream], Awaitable[None]], nursery: trio.Nursery, **options: Any
) -> trio_ws.WebSocketConnection:
    """Run wrap_client_stream against ``raw_server`` over a memory stream pair."""
    client_stream, server_stream = trio.testing.memory_stream_pair()
    nursery.start_soon(raw_server, server_stream)
    return await trio_ws.wrap_client_stream(nursery, client_stream, "localhost", "/", ping_interval=None, **options)


def unix_socket_path(tmp_path: Path) -> str:
    path = str(tmp_path / "ws.sock")
    if len(path) > 100:  # AF_UNIX paths are limited to ~108 bytes
        path = os.path.join(tempfile.mkdtemp(prefix="tws"), "ws.sock")
    return path


def flatten(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in flatten(inner)]
    return [exc]


async def echo_handler(request: WebSocketRequest) -> None:
    ws = await request.accept()
    async for message in ws:
        await ws.send_message(message)


async def reject_403(request: WebSocketRequest) -> None:
    await request.reject(403, body=b"go away")


# -- arguments -------------------------------------------------------------------
@pytest.mark.parametrize("use_ssl", ["yes", 1, None])
async def test_use_ssl_of_another_type_is_type_error(nursery: trio.Nursery, use_ssl: Any) -> None:
    with trio.fail_after(TIMEOUT):
        # trio-websocket's message, which its users may match on.
        with pytest.raises(TypeError, match=r"^`use_ssl` argument must be bool or ssl\.SSLContext, not "):
            await trio_ws.connect_websocket(nursery, HOST, 9, "/", use_ssl=use_ssl)


# -- connection failures -------------------------------------------------------------
@pytest.mark.parametrize("port", [-1, 0, 65536, 70000])
async def test_out_of_range_port_is_refused_before_connecting(port: int) -> None:
    """A port outside 1-65535 is a ValueError naming it (it used to wrap around silently)."""
    with trio.fail_after(TIMEOUT):
        with pytest.raises(ValueError, match=f"not {port}"):
            async with trio_ws.open_websocket(HOST, port, "/", use_ssl=False):
                pytest.fail("connected")  # pragma: no cover


# -- TLS ---------------------------------------------------------------------------
async def test_tls_handshake_cut_by_connect_timeout_closes_the_socket(nursery: trio.Nursery) -> None:
    """A server that never answers the TLS ClientHello: ConnectionTimeout, and the socket is closed."""
    received = bytearray()
    saw_eof = trio.Event()

    async def silent_tls_server(stream: trio.SocketStream) -> None:
        while chunk := await stream.receive_some(65536):
            received.extend(chunk)
        saw_eof.set()

    listeners = await nursery.start(partial(trio.serve_tcp, silent_tls_server, 0, host=HOST))
    port = listeners[0].socket.getsockname()[1]
    with trio.fail_after(TIMEOUT):
        with pytest.raises(ConnectionTimeout):
            async with trio_ws.open_websocket(HOST, port, "/", use_ssl=True, connect_timeout=0.3):
                pytest.fail("connected to a silent TLS server")  # pragma: no cover
        await saw_eof.wait()  # the client closed its end: no leaked socket
    assert received[:1] == b"\x16", "the client started a TLS handshake"


# -- the handshake response ------------------------------------------------------
async def test_malformed_response_is_handshake_error(nursery: trio.Nursery) -> None:
    async def raw_server(stream: trio.abc.Stream) -> None:
        await read_head(stream)
        await stream.send_all(b"THIS IS NOT HTTP\r\n\r\n")

    with trio.fail_after(TIMEOUT):
        with pytest.raises(HandshakeError, match="invalid handshake response"):
            await client_against_raw_server(raw_server, nursery)


async def test_100_continue_before_the_101_is_skipped(nursery: trio.Nursery) -> None:
    async def raw_server(stream: trio.abc.Stream) -> None:
        head = await read_head(stream)
        text_frame = b"\x81\x05hello"  # unmasked server frame
        await stream.send_all(b"HTTP/1.1 100 Continue\r\n\r\n" + switching_protocols(head) + text_frame)
        await trio.sleep_forever()

    with trio.fail_after(TIMEOUT):
        ws = await client_against_raw_server(raw_server, nursery)
        assert await ws.get_message() == "hello"


async def test_transport_failure_during_handshake_is_handshake_error(nursery: trio.Nursery) -> None:
    client_stream, server_stream = trio.testing.memory_stream_pair()
    await server_stream.aclose()  # the server is gone before the request goes out
    with trio.fail_after(TIMEOUT):
        with pytest.raises(HandshakeError, match="connection failed during the handshake") as info:
            await trio_ws.wrap_client_stream(nursery, client_stream, "localhost", "/")
    assert isinstance(info.value.__cause__, trio.BrokenResourceError)


# -- rejection bodies --------------------------------------------------------------
async def test_rejection_body_is_capped_at_64_kib(nursery: trio.Nursery) -> None:
    body = bytes(range(256)) * 400  # 102,400 bytes

    async def raw_server(stream: trio.abc.Stream) -> None:
        await read_head(stream)
        await stream.send_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        await trio.sleep_forever()

    with trio.fail_after(TIMEOUT):
        with pytest.raises(ConnectionRejected) as info:
            await client_against_raw_server(raw_server, nursery)
    assert info.value.status_code == 403
    assert info.value.body == body[: 2**16]


async def test_malformed_rejection_body_keeps_the_valid_part(nursery: trio.Nursery) -> None:
    async def raw_server(stream: trio.abc.Stream) -> None:
        await read_head(stream)
        await stream.send_all(
            b"HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nNOT-A-CHUNK-SIZE\r\n"
        )
        await trio.sleep_forever()

    with trio.fail_after(TIMEOUT):
        with pytest.raises(ConnectionRejected) as info:
            await client_against_raw_server(raw_server, nursery)
    assert info.value.status_code == 403
    assert info.value.body == b"hello"


async def test_rejection_body_cut_by_eof_keeps_what_arrived(nursery: trio.Nursery) -> None:
    async def raw_server(stream: trio.abc.Stream) -> None:
        await read_head(stream)
        await stream.send_all(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 100\r\n\r\n0123456789")
        await stream.aclose()

    with trio.fail_after(TIMEOUT):
        with pytest.raises(ConnectionRejected) as info:
            await client_against_raw_server(raw_server, nursery)
    assert info.value.status_code == 401
    assert info.value.body == b"0123456789"


async def test_rejection_body_cut_by_a_reset_keeps_what_arrived(nursery: trio.Nursery) -> None:
    async def raw_server(stream: trio.SocketStream) -> None:
        await read_head(stream)
        await stream.send_all(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 100\r\n\r\n0123456789")
        await trio.sleep(0.3)  # let the client read that, then reset
        stream.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await stream.aclose()

    listeners = await nursery.start(partial(trio.serve_tcp, raw_server, 0, host=HOST))
    port = listeners[0].socket.getsockname()[1]
    with trio.fail_after(TIMEOUT):
        with pytest.raises(ConnectionRejected) as info:
            await trio_ws.connect_websocket(nursery, HOST, port, "/", use_ssl=False)
    assert info.value.status_code == 401
    assert info.value.body == b"0123456789"


# -- Unix sockets ------------------------------------------------------------------
async def test_connect_websocket_unix_round_trip(nursery: trio.Nursery, tmp_path: Path) -> None:
    path = unix_socket_path(tmp_path)
    with trio.fail_after(TIMEOUT):
        await nursery.start(partial(trio_ws.serve_websocket_unix, echo_handler, path))
        ws = await trio_ws.connect_websocket_unix(nursery, path, "/room", ping_interval=None)
        assert ws.path == "/room"
        assert ws.remote == path
        await ws.send_message("over unix")
        assert await ws.get_message() == "over unix"
        await ws.aclose()
        assert ws.closed is not None and ws.closed.code == 1000


async def test_connect_websocket_unix_rejected(nursery: trio.Nursery, tmp_path: Path) -> None:
    path = unix_socket_path(tmp_path)
    with trio.fail_after(TIMEOUT):
        await nursery.start(partial(trio_ws.serve_websocket_unix, reject_403, path))
        with pytest.raises(ConnectionRejected) as info:
            await trio_ws.connect_websocket_unix(nursery, path)
    assert info.value.status_code == 403
    assert info.value.body == b"go away"


def silent_unix_listener(path: str) -> socket.socket:
    """A Unix socket that accepts connections (in its backlog) and never answers."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    sock.listen(8)
    return sock


async def test_connect_websocket_unix_times_out(nursery: trio.Nursery, tmp_path: Path) -> None:
    path = unix_socket_path(tmp_path)
    with silent_unix_listener(path), trio.fail_after(TIMEOUT):
        start = trio.current_time()
        with pytest.raises(ConnectionTimeout, match=r"took longer than 0\.2 s"):
            await trio_ws.connect_websocket_unix(nursery, path, connect_timeout=0.2)
        assert trio.current_time() - start < 5


async def test_connect_websocket_unix_missing_socket_is_os_error(nursery: trio.Nursery, tmp_path: Path) -> None:
    with trio.fail_after(TIMEOUT):
        with pytest.raises(FileNotFoundError):  # unwrapped, as documented for connect_websocket_unix
            await trio_ws.connect_websocket_unix(nursery, unix_socket_path(tmp_path))


async def test_open_websocket_unix_missing_socket_is_handshake_error(tmp_path: Path) -> None:
    path = unix_socket_path(tmp_path)
    with trio.fail_after(TIMEOUT):
        with pytest.raises(HandshakeError, match="could not connect to") as info:
            async with trio_ws.open_websocket_unix(path):
                pytest.fail("connected to a missing socket")  # pragma: no cover
    assert isinstance(info.value.__cause__, OSError)


async def test_open_websocket_unix_rejected(nursery: trio.Nursery, tmp_path: Path) -> None:
    path = unix_socket_path(tmp_path)
    with trio.fail_after(TIMEOUT):
        await nursery.start(partial(trio_ws.serve_websocket_unix, reject_403, path))
        with pytest.raises(ConnectionRejected) as info:
            async with trio_ws.open_websocket_unix(path):
                pytest.fail("a rejected handshake opened a connection")  # pragma: no cover
    assert info.value.status_code == 403


async def test_open_websocket_unix_times_out(tmp_path: Path) -> None:
    path = unix_socket_path(tmp_path)
    with (
        silent_unix_listener(path),
        trio.fail_after(TIMEOUT),
        pytest.raises(ConnectionTimeout, match=r"took longer than 0\.2 s"),
    ):
        async with trio_ws.open_websocket_unix(path, connect_timeout=0.2):
            pytest.fail("connected to a silent server")  # pragma: no cover


# -- open_websocket inside an async generator --------------------------------------
async def test_closing_an_async_generator_around_open_websocket_is_clean(nursery: trio.Nursery) -> None:
    """``aclose()`` of a generator suspended inside ``open_websocket_url`` must end it cleanly.

    The GeneratorExit thrown into the block must leave as itself (the
    documented promise: the block's exception is never wrapped in an
    ExceptionGroup), so that ``aclose()`` returns None.
    """
    closed_with: list[int] = []
    handler_done = trio.Event()

    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        async for message in ws:
            await ws.send_message(message)
        assert ws.closed is not None
        closed_with.append(ws.closed.code)
        handler_done.set()

    server = await nursery.start(partial(trio_ws.serve_websocket, handler, HOST, 0, None))

    async def messages() -> AsyncIterator[str | bytes]:
        async with trio_ws.open_websocket_url(f"ws://{HOST}:{server.port}/") as ws:
            await ws.send_message("first")
            yield await ws.get_message()
            yield "never reached"  # pragma: no cover

    with trio.fail_after(TIMEOUT):
        generator = messages()
        assert await generator.__anext__() == "first"
        try:
            await generator.aclose()
        except BaseException as exc:
            pytest.fail(f"aclose() raised {exc!r} (leaves: {flatten(exc)!r})")
        await handler_done.wait()
    assert closed_with == [1000]
